import json
import socket
import struct

import pytest
import safetensors.torch
import torch
from blake3 import blake3

from pamiq_ros.core.weights import (
    NonFiniteWeightsError,
    WeightsError,
    checksum_of,
    compare_checksum,
    decode_weights,
    encode_pieces,
    encode_weights,
    host_identity,
    non_finite_count,
    parse_weights,
)


def sample_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "layer.weight": torch.randn(5, 3),
        "layer.bias": torch.randn(5),
        "steps": torch.tensor(7, dtype=torch.int64),
        "half": torch.randn(4).to(torch.float16),
        "brain": torch.randn(2, 2).to(torch.bfloat16),
        "double": torch.randn(3, dtype=torch.float64),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.arange(6, dtype=torch.uint8).reshape(2, 3),
        "empty": torch.zeros(0, 4),
    }


def assert_same(decoded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(decoded) == set(expected)
    for name, tensor in expected.items():
        assert decoded[name].dtype == tensor.dtype, name
        assert decoded[name].shape == tensor.shape, name
        assert torch.equal(decoded[name], tensor), name


def rebuild(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def split(data: bytes) -> tuple[dict, bytes]:
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def sha(data: bytes) -> str:
    return "blake3:" + blake3(data).hexdigest()


def test_round_trip_keeps_names_dtypes_shapes_and_values():
    state = sample_state_dict()
    encoded = encode_weights("model", 3, state)
    assert encoded.model_name == "model" and encoded.version == 3
    assert encoded.checksum == sha(encoded.data)
    assert encoded.size_bytes == len(encoded.data)
    assert_same(decode_weights(encoded.data, encoded.checksum, "model", 3), state)


def test_the_safetensors_library_reads_ours_and_we_read_its():
    state = sample_state_dict()
    ours = encode_weights("model", 1, state)
    assert_same(safetensors.torch.load(ours.data), state)

    theirs = safetensors.torch.save(state, metadata={"model_name": "model", "version": "1"})
    assert_same(decode_weights(theirs, sha(theirs), "model", 1), state)


def test_pieces_are_the_encoded_bytes_with_aligned_tensors():
    state = sample_state_dict()
    pieces = encode_pieces("model", 1, state)
    data = b"".join(pieces.pieces)
    assert data == encode_weights("model", 1, state).data
    assert pieces.size_bytes == len(data)
    header, _ = split(data)
    data_start = len(data) - sum(tensor.nbytes for tensor in state.values())
    assert data_start % 8 == 0
    for name, tensor in state.items():
        assert (data_start + header[name]["data_offsets"][0]) % tensor.element_size() == 0


def test_encoding_takes_tensors_that_need_grad_or_are_not_contiguous():
    weight = torch.randn(4, 6, requires_grad=True)
    transposed = torch.randn(6, 4).t()
    encoded = encode_weights("m", 1, {"w": weight, "t": transposed})
    decoded = decode_weights(encoded.data, encoded.checksum, "m", 1)
    assert torch.equal(decoded["w"], weight.detach())
    assert torch.equal(decoded["t"], transposed)


def test_a_changed_byte_fails_the_checksum():
    encoded = encode_weights("model", 2, sample_state_dict())
    altered = bytearray(encoded.data)
    altered[-3] ^= 0x01
    with pytest.raises(WeightsError, match=r"model 'model' version 2: checksum mismatch"):
        decode_weights(bytes(altered), encoded.checksum, "model", 2)


def test_a_wrong_checksum_is_refused():
    encoded = encode_weights("model", 2, sample_state_dict())
    with pytest.raises(WeightsError, match="checksum mismatch"):
        decode_weights(encoded.data, sha(b"something else"), "model", 2)


@pytest.mark.parametrize("keep", [0, 5, 8, 40, -1])
def test_truncated_data_is_refused_even_with_a_matching_checksum(keep):
    data = encode_weights("model", 1, sample_state_dict()).data
    cut = data[:keep] if keep >= 0 else data[:-1]
    with pytest.raises(WeightsError, match=r"model 'model' version 1: .*(short|truncated|fit)"):
        decode_weights(cut, sha(cut), "model", 1)


def test_extra_bytes_after_the_tensors_are_refused():
    data = encode_weights("model", 1, sample_state_dict()).data + b"\0" * 8
    with pytest.raises(WeightsError, match="truncated or extended"):
        decode_weights(data, sha(data), "model", 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h["layer.bias"].update(dtype="F8_E4M3"), "tensor 'layer.bias': unsupported"),
        (lambda h: h["layer.bias"].update(shape=[6]), "tensor 'layer.bias': 20 bytes for shape"),
        (lambda h: h["layer.bias"].update(shape=[-5]), "tensor 'layer.bias': invalid shape"),
        (lambda h: h["layer.bias"].update(data_offsets=[0]), "invalid data_offsets"),
        (lambda h: h.update(extra="x"), "tensor 'extra': header entry is not an object"),
        (lambda h: h.pop("__metadata__"), "metadata missing"),
    ],
)
def test_malformed_headers_are_refused_naming_the_tensor(change, message):
    header, body = split(encode_weights("model", 1, sample_state_dict()).data)
    change(header)
    data = rebuild(header, body)
    with pytest.raises(WeightsError, match=message):
        decode_weights(data, sha(data), "model", 1)


def test_overlapping_tensors_are_refused():
    state = {"a": torch.ones(4), "b": torch.zeros(4)}
    header, body = split(encode_weights("model", 1, state).data)
    header["b"]["data_offsets"] = header["a"]["data_offsets"]
    data = rebuild(header, body)
    with pytest.raises(WeightsError, match="overlaps another"):
        decode_weights(data, sha(data), "model", 1)


def test_a_header_that_is_not_json_is_refused():
    data = struct.pack("<Q", 4) + b"{no}"
    with pytest.raises(WeightsError, match="header is not valid JSON"):
        decode_weights(data, sha(data), "model", 1)


def test_a_huge_header_length_is_refused_without_allocating():
    data = struct.pack("<Q", 1 << 60) + b"{}"
    with pytest.raises(WeightsError, match="header length"):
        decode_weights(data, sha(data), "model", 1)


@pytest.mark.parametrize(
    ("model_name", "version"), [("other", 1), ("model", 2)], ids=["model", "version"]
)
def test_metadata_naming_another_model_or_version_is_refused(model_name, version):
    encoded = encode_weights("model", 1, sample_state_dict())
    with pytest.raises(WeightsError, match=r"metadata says model 'model' version 1"):
        decode_weights(encoded.data, encoded.checksum, model_name, version)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_non_finite_weights_are_not_encoded_and_the_tensor_is_named(value, dtype):
    state = sample_state_dict()
    bad = torch.ones(3, 4, dtype=dtype)
    bad[1, 2] = value
    state["head.weight"] = bad
    with pytest.raises(NonFiniteWeightsError, match=r"tensor 'head.weight' holds 1 NaN/Inf"):
        encode_weights("model", 1, state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_non_finite_weights_that_arrive_anyway_are_refused(dtype):
    bad = torch.zeros(8, dtype=dtype)
    bad[3] = float("nan")
    data = safetensors.torch.save(
        {"ok": torch.ones(2), "head.bias": bad}, metadata={"model_name": "m", "version": "4"}
    )
    with pytest.raises(NonFiniteWeightsError, match=r"version 4: tensor 'head.bias' holds 1"):
        decode_weights(data, sha(data), "m", 4)


def test_non_finite_count_counts_and_ignores_integers():
    values = torch.tensor([1.0, float("nan"), float("inf"), 2.0])
    assert non_finite_count(values) == 2
    assert non_finite_count(values.to(torch.bfloat16)) == 2
    assert non_finite_count(torch.arange(5)) == 0


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"x": torch.ones(2, dtype=torch.complex64)}, "unsupported dtype"),
        ({"x": [1.0, 2.0]}, "'x' is a list, not a tensor"),
        ({"__metadata__": torch.ones(1)}, "invalid tensor name"),
    ],
)
def test_what_cannot_be_encoded_is_refused(state, message):
    with pytest.raises(WeightsError, match=message):
        encode_weights("model", 1, state)


@pytest.mark.parametrize(("name", "version"), [("", 1), ("m", -1), ("m", 1 << 64), ("m", True)])
def test_invalid_names_and_versions_are_refused(name, version):
    with pytest.raises(WeightsError):
        encode_weights(name, version, {"x": torch.ones(1)})


def test_decoding_without_copy_returns_views_of_a_writable_buffer():
    encoded = encode_weights("m", 1, {"w": torch.arange(4, dtype=torch.float32)})
    buffer = bytearray(encoded.data)
    views = parse_weights(buffer, "m", 1, copy=False)
    buffer[-4:] = struct.pack("<f", 42.0)
    assert views["w"][-1].item() == 42.0

    copied = parse_weights(buffer, "m", 1)  # copy=True: independent of the buffer
    buffer[-4:] = struct.pack("<f", 7.0)
    assert copied["w"][-1].item() == 42.0


def test_read_only_data_is_copied_even_without_copy():
    encoded = encode_weights("m", 1, {"w": torch.arange(4, dtype=torch.float32)})
    tensors = parse_weights(encoded.data, "m", 1, copy=False)
    tensors["w"] += 1  # writable: a copy, not a view of the immutable bytes
    assert torch.equal(tensors["w"], torch.arange(1, 5, dtype=torch.float32))


def test_host_identity_is_stable_and_names_the_host():
    identity = host_identity()
    assert identity == host_identity()
    assert identity.startswith(socket.gethostname() + "/")
    assert len(identity) > len(socket.gethostname()) + 1


def test_a_checksum_of_another_algorithm_is_refused_by_name():
    data = b"weights"
    compare_checksum(checksum_of(data), "blake3:" + blake3(data).hexdigest(), 7, "m", 1)
    with pytest.raises(WeightsError, match="is not blake3:<hex>"):
        compare_checksum(checksum_of(data), "ab" * 32, 7, "m", 1)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        compare_checksum(checksum_of(b"other"), checksum_of(data), 7, "m", 1)
