import json
from collections.abc import Mapping

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from typing_extensions import override

from pamiq_ros.core.buffers import RandomReplacementBuffer, SequentialBuffer
from pamiq_ros.core.checkpoint import CheckpointError
from pamiq_ros.core.experience import ExperienceError, ExperienceRecord
from pamiq_ros.core.learner import Learner
from pamiq_ros.core.trainers import Trainer


class RegressionTrainer(Trainer):
    """Fits a linear model to (x, y) pairs with Adam; a small stand-in for a real trainer."""

    def __init__(self, name: str = "fit", model_name: str = "linear", min_new_samples: int = 1):
        super().__init__(name, "pairs", min_buffer_size=4, min_new_samples=min_new_samples)
        self.model_name = model_name
        self.generator = torch.Generator().manual_seed(0)
        self.restored: list[str] = []

    @override
    def on_setup(self, models: Mapping[str, nn.Module]) -> None:
        self.model = models[self.model_name]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.05)

    @override
    def train(self, models, buffers):
        data = buffers["pairs"].get_data()
        x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
        losses = []
        for _ in range(3):
            index = torch.randint(len(x), (8,), generator=self.generator)
            loss = nn.functional.mse_loss(self.model(x[index]).squeeze(1), y[index])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        return {"fit/loss": float(np.mean(losses))}, (self.model_name,)

    @override
    def on_weights_restored(self, model_name: str) -> None:
        self.restored.append(model_name)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.05)

    @override
    def extra_state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    @override
    def load_extra_state_dict(self, state) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


def route(record: ExperienceRecord):
    x = record.tensors["x"]
    return {
        "pairs": {"x": x, "y": np.float32(x.sum())},
        "frames": {"mean": np.array(record.observation.mean(), dtype=np.float32)},
    }


def make_learner(seed: int = 0, in_features: int = 4, trainer: Trainer | None = None) -> Learner:
    torch.manual_seed(seed)
    return Learner(
        {"linear": nn.Linear(in_features, 1)},
        {
            "pairs": RandomReplacementBuffer(["x", "y"], 16, seed=seed),
            "frames": SequentialBuffer(["mean"], 8),
        },
        [trainer or RegressionTrainer()],
        route,
    )


def record(step: int, x=None) -> ExperienceRecord:
    rng = np.random.default_rng(step)
    return ExperienceRecord(
        step=step,
        observation=np.full((4, 4, 3), step % 256, np.uint8),
        action=np.zeros(5, np.int64),
        model_name="linear",
        weight_version=0,
        tensors={"x": rng.normal(size=4).astype(np.float32) if x is None else x},
    )


def feed(learner: Learner, steps) -> None:
    for step in steps:
        learner.add(record(step))


def state_of(learner: Learner):
    """Everything that must be equal after a load, in comparable form."""
    (trainer,) = learner.trainers
    assert isinstance(trainer, RegressionTrainer)
    optimizer = trainer.optimizer.state_dict()["state"]
    return {
        "weights": {k: v.clone() for k, v in learner.weights("linear").items()},
        "optimizer": {i: {k: v.clone() for k, v in s.items()} for i, s in optimizer.items()},
        "generator": trainer.generator.get_state().clone(),
        "buffers": {n: b.get_data() for n, b in learner.buffers.items()},
        "added": {n: b.added_total for n, b in learner.buffers.items()},
        "versions": learner.versions,
        "runs": trainer.runs,
    }


def assert_same_state(a, b) -> None:
    assert a["versions"] == b["versions"]
    assert a["runs"] == b["runs"]
    assert a["added"] == b["added"]
    for key in a["weights"]:
        torch.testing.assert_close(a["weights"][key], b["weights"][key], rtol=0, atol=0)
    assert a["optimizer"].keys() == b["optimizer"].keys()
    for index in a["optimizer"]:
        for key in a["optimizer"][index]:
            torch.testing.assert_close(a["optimizer"][index][key], b["optimizer"][index][key])
    assert torch.equal(a["generator"], b["generator"])
    for name in a["buffers"]:
        for key in a["buffers"][name]:
            np.testing.assert_array_equal(a["buffers"][name][key], b["buffers"][name][key])


def test_add_routes_records_into_buffers():
    learner = make_learner()
    feed(learner, range(3))
    assert learner.buffer_sizes() == {"pairs": 3, "frames": 3}
    assert learner.buffers["frames"].get_data()["mean"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError):
        learner.buffers["new"] = SequentialBuffer(["a"], 1)  # type: ignore[index]


def test_bad_record_is_refused_without_changing_any_buffer():
    learner = make_learner()
    feed(learner, range(2))
    with pytest.raises(ExperienceError, match=r"step 7: buffer 'pairs': .*shape \(3,\)"):
        learner.add(record(7, x=np.zeros(3, np.float32)))
    no_tensors = ExperienceRecord(8, np.zeros((4, 4, 3), np.uint8), np.zeros(5, np.int64), "", 0)
    with pytest.raises(ExperienceError, match="step 8: route failed"):
        learner.add(no_tensors)
    assert learner.buffer_sizes() == {"pairs": 2, "frames": 2}


def test_route_naming_an_unknown_buffer_is_refused():
    learner = Learner(
        {"linear": nn.Linear(4, 1)},
        {"pairs": SequentialBuffer(["x", "y"], 4)},
        [RegressionTrainer()],
        lambda r: {"elsewhere": {"x": np.zeros(1)}},
    )
    with pytest.raises(ExperienceError, match="route names buffer 'elsewhere'"):
        learner.add(record(0))


def test_versions_start_at_zero_and_count_updates():
    learner = make_learner()
    assert learner.versions == {"linear": 0}
    assert learner.train_next() is None
    feed(learner, range(4))
    result = learner.train_next()
    assert result is not None
    assert result.updated_models == ("linear",)
    assert learner.versions == {"linear": 1}
    assert learner.train_next() is None  # no new samples
    feed(learner, [4])
    learner.train_next()
    assert learner.versions == {"linear": 2}
    versions = learner.versions
    versions["linear"] = 99
    assert learner.versions == {"linear": 2}


def test_training_lowers_the_loss():
    learner = make_learner()
    losses = []
    for step in range(60):
        feed(learner, [step])
        result = learner.train_next()
        if result is not None:
            losses.append(result.metrics["fit/loss"])
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])


def test_weights_are_detached_copies():
    learner = make_learner()
    weights = learner.weights("linear")
    before = weights["weight"].clone()
    weights["weight"].fill_(5.0)
    assert not torch.equal(learner.weights("linear")["weight"], weights["weight"])
    feed(learner, range(4))
    learner.train_next()
    assert not torch.equal(learner.weights("linear")["weight"], before)
    assert not weights["weight"].requires_grad
    with pytest.raises(KeyError, match="no model 'nope'"):
        learner.weights("nope")


def test_non_finite_weights_are_found_and_rolled_back():
    learner = make_learner()
    feed(learner, range(4))
    learner.train_next()
    last_good = learner.weights("linear")
    assert learner.non_finite_parameters("linear") == []
    model = learner.models["linear"]
    assert isinstance(model, nn.Linear)
    with torch.no_grad():
        model.weight[0, 1] = float("nan")
    feed(learner, [4])
    learner.train_next()
    assert learner.non_finite_parameters("linear") == ["weight", "bias"]
    learner.restore_weights("linear", last_good)
    assert learner.non_finite_parameters("linear") == []
    assert torch.equal(learner.weights("linear")["weight"], last_good["weight"])
    trainer = learner.trainers[0]
    assert isinstance(trainer, RegressionTrainer)
    assert trainer.restored == ["linear"]
    assert learner.versions == {"linear": 2}  # versions only ever increase
    feed(learner, [5])
    learner.train_next()
    assert learner.non_finite_parameters("linear") == []
    assert learner.versions == {"linear": 3}


def test_save_load_round_trip_restores_everything(tmp_path):
    learner = make_learner(seed=0)
    for step in range(12):
        feed(learner, [step])
        learner.train_next()
    learner.save_state(tmp_path / "ckpt")
    saved = state_of(learner)

    other = make_learner(seed=5)
    other.load_state(tmp_path / "ckpt")
    assert_same_state(state_of(other), saved)
    assert json.loads((tmp_path / "ckpt" / "learner.json").read_text())["versions"] == {
        "linear": saved["versions"]["linear"]
    }
    # The same future: buffers' random generators, trainer's batch draws and Adam's moments.
    for each in (learner, other):
        feed(each, range(100, 110))
        each.train_next()
    assert_same_state(state_of(other), state_of(learner))


def test_construction_refuses_bad_names_and_missing_buffers():
    with pytest.raises(ValueError, match="model name 'a/b'"):
        Learner({"a/b": nn.Linear(4, 1)}, {"pairs": SequentialBuffer(["x"], 2)}, [], route)
    with pytest.raises(ValueError, match="needs buffer 'pairs'"):
        Learner(
            {"linear": nn.Linear(4, 1)},
            {"other": SequentialBuffer(["x"], 2)},
            [RegressionTrainer()],
            route,
        )


@pytest.fixture
def saved(tmp_path):
    learner = make_learner()
    for step in range(6):
        feed(learner, [step])
        learner.train_next()
    learner.save_state(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def damage_truncate_model(path):
    file = path / "models" / "linear.safetensors"
    file.write_bytes(file.read_bytes()[:20])


def damage_nan_model(path):
    save_file(
        {"weight": torch.full((1, 4), float("nan")), "bias": torch.zeros(1)},
        str(path / "models" / "linear.safetensors"),
    )


def damage_shape_model(path):
    save_file(
        {"weight": torch.zeros(1, 5), "bias": torch.zeros(1)},
        str(path / "models" / "linear.safetensors"),
    )


def damage_trainer_file(path):
    (path / "trainers" / "fit.pt").write_bytes(b"not a torch file")


def damage_optimizer_state(path):
    # Loads fine but does not fit the optimizer: only found while applying, then rolled back.
    state = torch.load(path / "trainers" / "fit.pt", weights_only=True)
    state["extra"]["optimizer"]["param_groups"][0]["params"] = [0, 1, 2]
    torch.save(state, path / "trainers" / "fit.pt")


def damage_buffer(path):
    meta = path / "buffers" / "pairs" / "meta.json"
    content = json.loads(meta.read_text())
    content["max_size"] = 99
    meta.write_text(json.dumps(content))


def damage_names(path):
    meta = path / "learner.json"
    content = json.loads(meta.read_text())
    content["models"] = ["other"]
    meta.write_text(json.dumps(content))


def damage_meta(path):
    (path / "learner.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (damage_truncate_model, r"linear\.safetensors is damaged"),
        (damage_nan_model, "weight holds NaN or Inf"),
        (damage_shape_model, r"weight is \(1, 5\) torch.float32, model 'linear' has \(1, 4\)"),
        (damage_trainer_file, r"fit\.pt is damaged"),
        (damage_optimizer_state, "trainer 'fit': loaded state dict contains a parameter group"),
        (damage_buffer, "buffer 'pairs': .*max_size 99, this buffer has 16"),
        (damage_names, r"saved with models \['other'\], this learner has \['linear'\]"),
        (damage_meta, r"learner\.json is missing"),
    ],
)
def test_refused_state_leaves_the_learner_unchanged(saved, damage, message):
    damage(saved)
    learner = make_learner(seed=3)
    for step in range(50, 58):
        feed(learner, [step])
        learner.train_next()
    before = state_of(learner)
    with pytest.raises(CheckpointError, match=message):
        learner.load_state(saved)
    assert_same_state(state_of(learner), before)
    # Still fully working afterwards.
    feed(learner, [99])
    assert learner.train_next() is not None


class MeasuredTrainer(RegressionTrainer):
    """Reports the model's bias as a health figure, or fails to measure when told to."""

    def __init__(self, name: str, fail: bool) -> None:
        super().__init__(name=name)
        self.fail = fail

    @override
    def health(self, models, buffers):
        if self.fail:
            raise RuntimeError("cannot measure")
        bias = models[self.model_name].bias
        return {
            f"{self.name}/bias": float(bias.detach()[0]),
            f"{self.name}/pairs": 1.0 * len(buffers["pairs"]),
        }


def test_health_gathers_every_trainers_figures_and_names_the_ones_that_failed():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    learner = Learner(
        {"linear": model},
        {"pairs": RandomReplacementBuffer(["x", "y"], 16), "frames": SequentialBuffer(["mean"], 8)},
        [MeasuredTrainer("good", fail=False), MeasuredTrainer("broken", fail=True)],
        route,
    )
    feed(learner, range(5))
    report = learner.health()
    assert report.figures == {"good/bias": pytest.approx(float(model.bias[0])), "good/pairs": 5.0}
    assert report.errors == {"broken": "RuntimeError: cannot measure"}
    # Measuring is not training: no version moved.
    assert learner.versions == {"linear": 0}
