import hashlib
import json

from blake3 import blake3

from pamiq_ros.bench.weight_hash import (
    main,
    read_hashing_blocks,
    read_then_sha256,
    write_hashing_blocks,
    write_with_parallel_sha256,
)


def test_both_ways_hash_exactly_the_bytes_written_and_read(tmp_path):
    data = bytes(range(256)) * 9000  # a little over 2 MiB: several blocks
    pieces = [memoryview(data[:1000]), memoryview(data[1000:])]
    path = tmp_path / "w"
    assert write_with_parallel_sha256(pieces, path) == hashlib.sha256(data).hexdigest()
    assert write_hashing_blocks(pieces, path) == "blake3:" + blake3(data).hexdigest()
    assert path.read_bytes() == data
    buffer = bytearray(len(data))
    assert read_then_sha256(path, buffer) == hashlib.sha256(data).hexdigest()
    assert read_hashing_blocks(path, buffer) == "blake3:" + blake3(data).hexdigest()


def test_the_bench_writes_every_repeat_of_every_arm(tmp_path):
    assert main(["--params", "2e4", "--repeats", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "weight_hash.json").read_text())
    assert set(report["ms"]) == set(report["p50_ms"]) and len(report["ms"]) == 4
    assert all(len(values) == 2 and min(values) > 0 for values in report["ms"].values())
