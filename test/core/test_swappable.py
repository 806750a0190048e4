import io
import threading
import time

import pytest
import torch

from pamiq_ros.core import swappable
from pamiq_ros.core.swappable import SwappableModel
from pamiq_ros.core.weights import NonFiniteWeightsError, WeightsError


def build() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def filled(value: float) -> dict[str, torch.Tensor]:
    return {name: torch.full_like(tensor, value) for name, tensor in build().state_dict().items()}


def values_of(module: torch.nn.Module) -> set[float]:
    return {float(v) for tensor in module.state_dict().values() for v in tensor.flatten()}


def test_starts_with_the_locally_built_weights_as_version_zero_in_eval_mode():
    model = SwappableModel("policy", build)
    module, version = model.current()
    assert version == 0 and model.version == 0
    assert not module.training
    assert not any(parameter.requires_grad for parameter in module.parameters())
    assert model.swap_if_ready() is None
    assert model.pending_version() is None


def test_prepared_weights_become_active_at_the_swap_only():
    model = SwappableModel("policy", build)
    before, _ = model.current()
    model.prepare(filled(0.5), 1, announced_at=time.time() - 0.25)
    assert model.current() == (before, 0)  # nothing changes until the swap
    assert model.pending_version() == 1
    assert model.swap_if_ready() == 1
    module, version = model.current()
    assert version == 1 and module is not before
    assert values_of(module) == {0.5}
    assert model.swap_if_ready() is None
    record = model.last_swap()
    assert record is not None and record.version == 1
    assert record.lag_s is not None and 0.25 <= record.lag_s < 5.0


def test_the_trainers_version_zero_replaces_the_local_weights_once():
    model = SwappableModel("policy", build)
    assert model.accepts(0)
    model.prepare(filled(0.0), 0)
    assert not model.accepts(0)  # already pending
    assert model.swap_if_ready() == 0
    assert values_of(model.current()[0]) == {0.0}
    with pytest.raises(WeightsError, match="version 0: not newer than the active version 0"):
        model.prepare(filled(1.0), 0)


def test_versions_only_increase():
    model = SwappableModel("policy", build)
    model.prepare(filled(2.0), 2)
    model.swap_if_ready()
    for version in (1, 2):
        assert not model.accepts(version)
        with pytest.raises(WeightsError, match=rf"'policy' version {version}: not newer"):
            model.prepare(filled(1.0), version)
    model.prepare(filled(3.0), 3)
    with pytest.raises(WeightsError, match="version 3 pending"):
        model.prepare(filled(3.5), 3)
    assert model.swap_if_ready() == 3
    assert values_of(model.current()[0]) == {3.0}


def test_a_newer_prepare_replaces_the_pending_one():
    model = SwappableModel("policy", build)
    model.prepare(filled(1.0), 1)
    model.prepare(filled(2.0), 2)
    assert model.swap_if_ready() == 2
    assert values_of(model.current()[0]) == {2.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update({"0.weight": torch.zeros(8, 5)}), r"'0.weight' has shape \[8, 5\]"),
        (lambda s: s.pop("2.bias"), r"missing \['2.bias'\]"),
        (lambda s: s.update({"extra": torch.zeros(1)}), r"unexpected \['extra'\]"),
        (lambda s: s.update({"0.bias": torch.zeros(8, dtype=torch.int64)}), "dtype torch.int64"),
        (lambda s: s["0.bias"].__setitem__(2, float("inf")), "'0.bias' holds NaN/Inf"),
    ],
)
def test_weights_that_do_not_fit_are_refused_and_a_pending_version_survives(change, message):
    model = SwappableModel("policy", build)
    model.prepare(filled(1.0), 1)
    bad = filled(2.0)
    change(bad)
    with pytest.raises(WeightsError, match=message):
        model.prepare(bad, 2)
    assert model.swap_if_ready() == 1
    assert values_of(model.current()[0]) == {1.0}


def test_non_finite_weights_raise_the_non_finite_error():
    bad = filled(1.0)
    bad["2.weight"][0, 0] = float("nan")
    with pytest.raises(NonFiniteWeightsError):
        SwappableModel("policy", build).prepare(bad, 1)


def test_floating_point_weights_of_another_precision_are_cast():
    model = SwappableModel("policy", build)
    model.prepare({k: v.double() for k, v in filled(0.25).items()}, 1)
    model.swap_if_ready()
    module, _ = model.current()
    assert all(t.dtype == torch.float32 for t in module.state_dict().values())
    assert values_of(module) == {0.25}


def test_swap_does_not_wait_for_a_load_in_progress(monkeypatch):
    model = SwappableModel("policy", build)
    loading = threading.Event()
    release = threading.Event()
    real_copy = swappable.copy_tensor

    def slow_copy(target: torch.Tensor, source: torch.Tensor) -> None:
        loading.set()
        release.wait(5.0)
        real_copy(target, source)

    monkeypatch.setattr(swappable, "copy_tensor", slow_copy)
    loader = threading.Thread(target=model.prepare, args=(filled(1.0), 1))
    loader.start()
    assert loading.wait(5.0)
    started = time.perf_counter()
    assert model.swap_if_ready() is None
    assert time.perf_counter() - started < 0.05
    assert model.current()[1] == 0
    release.set()
    loader.join(5.0)
    assert model.swap_if_ready() == 1


def test_acting_never_sees_half_loaded_weights():
    """A loader prepares versions as fast as it can while an acting thread swaps and checks."""
    model = SwappableModel("policy", build)
    stop = threading.Event()
    problems: list[str] = []
    seen_versions: set[int] = set()

    def act() -> None:
        while not stop.is_set():
            model.swap_if_ready()
            module, version = model.current()
            values = values_of(module)
            if version and values != {float(version)}:
                problems.append(f"version {version} acting with {sorted(values)[:4]}")
            seen_versions.add(version)

    actor = threading.Thread(target=act)
    actor.start()
    for version in range(1, 200):
        model.prepare(filled(float(version)), version)
        if version % 10 == 0:  # now and then let the actor catch up, however loaded the machine
            deadline = time.monotonic() + 5.0
            while model.version < version and time.monotonic() < deadline:
                time.sleep(0.001)
    time.sleep(0.05)
    stop.set()
    actor.join(5.0)
    assert problems == []
    assert len(seen_versions) > 10
    assert model.swap_if_ready() is None
    assert model.current()[1] == 199


def test_checkpoint_state_round_trips_through_torch_save():
    model = SwappableModel("policy", build)
    model.prepare(filled(0.75), 5)
    model.swap_if_ready()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    restored = SwappableModel("policy", build)
    restored.load_state_dict(state)
    module, version = restored.current()
    assert version == 5
    assert values_of(module) == {0.75}
    assert not restored.accepts(5) and restored.accepts(6)


def test_a_checkpoint_of_the_local_weights_still_takes_the_trainers_version_zero():
    model = SwappableModel("policy", build)
    restored = SwappableModel("policy", build)
    restored.load_state_dict(model.state_dict())
    assert restored.accepts(0)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"version": -1, "weights": filled(1.0)}, "invalid version"),
        ({"version": 1}, "no weights mapping"),
        ({"version": 1, "weights": {"0.weight": torch.zeros(8, 4)}}, "missing"),
    ],
)
def test_a_bad_checkpoint_state_is_refused(state, message):
    model = SwappableModel("policy", build)
    with pytest.raises(WeightsError, match=message):
        model.load_state_dict(state)
    assert model.current()[1] == 0
