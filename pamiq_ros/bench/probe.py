"""The curiosity benchmark's measures, ROS-free: visited area, and a linear probe of an encoder.

* :class:`VisitedCells` counts the distinct cells of a square grid over the ground-truth
  ``(x, y)`` an avatar passed through, and when each was first entered.
* :func:`render_probe_dataset` renders the simulated world's first-person frames at random poses
  inside the room (:func:`sample_poses`), with targets ``x, y, cos(yaw), sin(yaw)``.
* :func:`linear_probe` fits a ridge regression from features to targets on one part of a
  dataset and scores it (R^2) on the rest: how linearly an encoder's output tells the pose.
"""

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import AVATAR_RADIUS, EYE_HEIGHT, Pose, WorldLayout, default_layout

PROBE_TARGETS = ("x", "y", "cos_yaw", "sin_yaw")
"""What the probe recovers from a frame's features, in this order."""

DEFAULT_ALPHAS = tuple(float(alpha) for alpha in np.logspace(-2, 5, 15))
"""Ridge penalties tried (on standardised features); cross-validation picks one per target."""

FloatArray = npt.NDArray[np.float64]
EncodeFunction = Callable[[npt.NDArray[np.uint8]], torch.Tensor]
"""Frames ``(B, H, W, 3)`` uint8 in, features ``(B, ...)`` out."""


# --- visited area -----------------------------------------------------------------------------


class VisitedCells:
    """Distinct cells of a square grid (side ``cell_size`` metres) that positions fell in.

    The grid is anchored at the origin: cell ``(i, j)`` covers
    ``[i * cell_size, (i + 1) * cell_size) x [j * cell_size, (j + 1) * cell_size)``.

    Raises:
        ValueError: If ``cell_size`` is not positive.
    """

    def __init__(self, cell_size: float = 1.0) -> None:
        if not cell_size > 0:
            raise ValueError(f"cell_size must be positive, got {cell_size}")
        self.cell_size = cell_size
        self._first_entered: dict[tuple[int, int], float] = {}
        self.positions = 0
        """Positions added (finite ones)."""

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """The grid cell holding ``(x, y)``."""
        return math.floor(x / self.cell_size), math.floor(y / self.cell_size)

    def add(self, x: float, y: float, time: float = 0.0) -> bool:
        """Records the position ``(x, y)`` seen at ``time``; True if its cell is new.

        Non-finite positions are ignored (False): they say nothing about where the avatar was.
        """
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        self.positions += 1
        cell = self.cell_of(x, y)
        if cell in self._first_entered:
            return False
        self._first_entered[cell] = time
        return True

    @property
    def count(self) -> int:
        """Cells visited so far."""
        return len(self._first_entered)

    @property
    def area(self) -> float:
        """Area of the visited cells (square metres)."""
        return self.count * self.cell_size**2

    @property
    def cells(self) -> set[tuple[int, int]]:
        """The visited cells."""
        return set(self._first_entered)

    def count_until(self, time: float) -> int:
        """Cells first entered at or before ``time``."""
        return sum(1 for entered in self._first_entered.values() if entered <= time)

    def counts_over_time(self, times: Iterable[float]) -> list[tuple[float, int]]:
        """``(time, cells visited by then)`` for each of ``times``."""
        return [(time, self.count_until(time)) for time in times]


# --- probe dataset ----------------------------------------------------------------------------


def _distance_to_segments(
    points: FloatArray, starts: FloatArray, ends: FloatArray
) -> npt.NDArray[np.float64]:
    """Distance from each point ``(N, 2)`` to the nearest of the segments ``(M, 2) -> (M, 2)``."""
    vectors = ends - starts  # (M, 2)
    length_sq = np.maximum((vectors**2).sum(axis=1), 1e-12)  # (M,)
    relative = points[:, None, :] - starts[None, :, :]  # (N, M, 2)
    along = np.clip((relative * vectors[None]).sum(axis=2) / length_sq, 0.0, 1.0)  # (N, M)
    closest = starts[None] + along[..., None] * vectors[None]
    return np.sqrt(((points[:, None, :] - closest) ** 2).sum(axis=2)).min(axis=1)


@dataclass(frozen=True)
class ProbePoses:
    """Random camera poses inside a world, and when (world time) each is seen.

    Attributes:
        x, y, yaw: Positions (m) and headings (rad) of shape ``(N,)``.
        time: World time (s) of each view: where the moving pillars are.
    """

    x: FloatArray
    y: FloatArray
    yaw: FloatArray
    time: FloatArray

    def targets(self) -> FloatArray:
        """The probe's targets ``(N, 4)``: x, y, cos(yaw), sin(yaw) (see :data:`PROBE_TARGETS`)."""
        return np.stack([self.x, self.y, np.cos(self.yaw), np.sin(self.yaw)], axis=1)


def sample_poses(
    layout: WorldLayout, count: int, seed: int = 0, clearance: float = AVATAR_RADIUS + 0.1
) -> ProbePoses:
    """``count`` poses drawn uniformly inside the room where the avatar could stand.

    A position is kept when it is at least ``clearance`` from every wall and clear of every
    pillar at that view's world time (drawn uniformly over ten minutes); yaw is uniform.

    Raises:
        ValueError: If ``count`` is below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    x_min, y_min, x_max, y_max = layout.bounds
    starts = np.array([wall.start for wall in layout.walls], dtype=np.float64)
    ends = np.array([wall.end for wall in layout.walls], dtype=np.float64)
    kept: list[tuple[float, float, float]] = []  # x, y, time
    while len(kept) < count:
        batch = 2 * (count - len(kept)) + 16
        points = np.stack(
            [rng.uniform(x_min, x_max, batch), rng.uniform(y_min, y_max, batch)], axis=1
        )
        times = rng.uniform(0.0, 600.0, batch)
        clear = _distance_to_segments(points, starts, ends) >= clearance
        for (x, y), time, wall_clear in zip(points, times, clear, strict=True):
            if not wall_clear:
                continue
            if all(
                math.hypot(x - px, y - py) >= pillar.radius + clearance
                for pillar in layout.pillars
                for px, py in [pillar.position(float(time))]
            ):
                kept.append((float(x), float(y), float(time)))
    chosen = np.array(kept[:count], dtype=np.float64)
    yaw = rng.uniform(-math.pi, math.pi, count)
    return ProbePoses(chosen[:, 0], chosen[:, 1], yaw, chosen[:, 2])


def render_probe_dataset(
    count: int,
    seed: int = 0,
    world_seed: int = 0,
    width: int = 160,
    height: int = 120,
) -> tuple[npt.NDArray[np.uint8], ProbePoses]:
    """Frames of the simulated world at ``count`` random poses, as the camera sees them.

    The world is :func:`pamiq_ros.sim.world.default_layout` of ``world_seed`` drawn by the sim's
    :class:`~pamiq_ros.sim.renderer.Renderer` at ``width`` x ``height`` from eye height, pillars
    where they are at each pose's world time.

    Returns:
        uint8 ``(count, height, width, 3)`` RGB frames and their poses.
    """
    layout = default_layout(world_seed)
    renderer = Renderer(layout, width, height)
    poses = sample_poses(layout, count, seed)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        pose = Pose(float(poses.x[index]), float(poses.y[index]), float(poses.yaw[index]))
        pillars = [pillar.position(float(poses.time[index])) for pillar in layout.pillars]
        frames[index] = renderer.render_view(pose, EYE_HEIGHT, pillars)
    return frames, poses


PIXEL_PROBE_SIZE = (16, 12)
"""Width and height the pixel reference probe shrinks frames to."""


def pixel_features(frames: npt.NDArray[np.uint8]) -> FloatArray:
    """Frames shrunk to :data:`PIXEL_PROBE_SIZE`, flattened, in [0, 1]: the raw-pixel reference."""
    import cv2

    small = [cv2.resize(frame, PIXEL_PROBE_SIZE, interpolation=cv2.INTER_AREA) for frame in frames]
    return np.stack(small).reshape(len(frames), -1).astype(np.float64) / 255.0


def encoder_features(
    encode: EncodeFunction, frames: npt.NDArray[np.uint8], batch_size: int = 100
) -> FloatArray:
    """``encode(frames)`` flattened to ``(N, features)`` float64, in batches, without gradients.

    Args:
        encode: Frames ``(B, H, W, 3)`` uint8 -> features tensor ``(B, ...)``, such as
            :meth:`pamiq_ros.models.jepa.JepaEncoder.encode`.
        frames: The frames.
        batch_size: Frames per call.
    """
    parts = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            features = encode(frames[start : start + batch_size])
            parts.append(features.flatten(1).double().cpu().numpy())
    return np.concatenate(parts, axis=0)


# --- ridge regression probe -------------------------------------------------------------------


def r2_scores(predicted: FloatArray, actual: FloatArray) -> FloatArray:
    """Coefficient of determination per column: 1 - residual / total sum of squares.

    1 is a perfect fit, 0 is no better than the column's mean, below 0 is worse. A constant
    column scores 0 when predicted exactly and -inf otherwise.
    """
    residual = ((actual - predicted) ** 2).sum(axis=0)
    total = ((actual - actual.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = 1.0 - residual / total
    return np.where(total > 0, scores, np.where(residual > 0, -np.inf, 0.0))


class _Standardiser:
    def __init__(self, features: FloatArray) -> None:
        self.mean = features.mean(axis=0)
        std = features.std(axis=0)
        # Constant features carry nothing; dividing by 1 keeps them at 0 instead of NaN.
        self.std = np.where(std > 1e-12, std, 1.0)

    def __call__(self, features: FloatArray) -> FloatArray:
        return (features - self.mean) / self.std


def _ridge_predictions(
    train_x: FloatArray, train_y: FloatArray, test_x: FloatArray, alphas: Sequence[float]
) -> FloatArray:
    """Predictions ``(alphas, N_test, targets)`` of ridge fits on standardised features."""
    scale = _Standardiser(train_x)
    x, x_test = scale(train_x), scale(test_x)
    y_mean = train_y.mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    projected = u.T @ (train_y - y_mean)  # (k, targets)
    test_basis = x_test @ vt.T  # (N_test, k)
    predictions = []
    for alpha in alphas:
        shrink = s / (s**2 + alpha)  # (k,)
        predictions.append(test_basis @ (shrink[:, None] * projected) + y_mean)
    return np.stack(predictions)


@dataclass(frozen=True)
class ProbeResult:
    """How well a ridge regression on features recovers each target on held-out samples.

    Attributes:
        r2: Held-out R^2 per target name.
        alpha: The ridge penalty cross-validation chose per target.
        train_samples: Samples fitted on.
        test_samples: Samples scored on.
        features: Feature dimensions.
    """

    r2: dict[str, float]
    alpha: dict[str, float]
    train_samples: int
    test_samples: int
    features: int

    @property
    def mean_r2(self) -> float:
        """Mean held-out R^2 over the targets."""
        return float(np.mean(list(self.r2.values())))

    def as_dict(self) -> dict[str, object]:
        """Every figure, for JSON."""
        return {
            "r2": self.r2,
            "mean_r2": self.mean_r2,
            "alpha": self.alpha,
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
            "features": self.features,
        }


def split_indices(
    count: int, train_fraction: float = 0.7, seed: int = 0
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """A random split of ``range(count)`` into train and test indices.

    Raises:
        ValueError: If either part would be smaller than 2 samples.
    """
    train_count = round(count * train_fraction)
    if train_count < 2 or count - train_count < 2:
        raise ValueError(
            f"a {train_fraction:g} split of {count} samples leaves fewer than 2 on one side"
        )
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:train_count]), np.sort(order[train_count:])


def _fit_held_out(
    features: npt.ArrayLike,
    targets: npt.ArrayLike,
    train_fraction: float,
    seed: int,
    alphas: Sequence[float],
    folds: int,
) -> tuple[FloatArray, FloatArray, list[float], int, int]:
    """Ridge fits per target (penalty by cross-validation) and their held-out predictions.

    Returns:
        Held-out predictions ``(N_test, T)``, the held-out targets, the chosen penalties, the
        number of training samples and of features.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features (N, D) and targets (N, T) expected, got {x.shape}, {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("features and targets must be finite")
    if not alphas or folds < 2:
        raise ValueError("at least one alpha and two folds are needed")
    train, test = split_indices(len(x), train_fraction, seed)
    fold_of = np.random.default_rng(seed + 1).permutation(len(train)) % folds
    validation_error = np.zeros((len(alphas), y.shape[1]))
    for fold in range(folds):
        fit, held = train[fold_of != fold], train[fold_of == fold]
        predicted = _ridge_predictions(x[fit], y[fit], x[held], alphas)
        validation_error += ((predicted - y[held][None]) ** 2).sum(axis=1)
    best = validation_error.argmin(axis=0)  # per target
    chosen = [alphas[index] for index in best]
    predictions = _ridge_predictions(x[train], y[train], x[test], chosen)
    held_out = np.stack([predictions[column, :, column] for column in range(y.shape[1])], axis=1)
    return held_out, y[test], chosen, len(train), x.shape[1]


def linear_probe(
    features: npt.ArrayLike,
    targets: npt.ArrayLike,
    target_names: Sequence[str] = PROBE_TARGETS,
    train_fraction: float = 0.7,
    seed: int = 0,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    folds: int = 5,
) -> ProbeResult:
    """Ridge regression from ``features`` to ``targets``: fit on a split, R^2 on the rest.

    Features are standardised with the training part's statistics. The penalty of each target
    is chosen from ``alphas`` by ``folds``-fold cross-validation inside the training part, so
    the held-out part is only used to score.

    Args:
        features: ``(N, D)`` features.
        targets: ``(N, T)`` targets.
        target_names: ``T`` names for the result.
        train_fraction: Share of the samples fitted on; the rest is scored on.
        seed: Seed of the split and the folds.
        alphas: Ridge penalties to choose from.
        folds: Cross-validation folds.

    Raises:
        ValueError: If the shapes disagree, values are not finite, or a part is too small.
    """
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] != len(target_names):
        raise ValueError(f"{y.shape[1]} target columns but {len(target_names)} names")
    held_out, actual, chosen, train_count, width = _fit_held_out(
        features, y, train_fraction, seed, alphas, folds
    )
    scores = r2_scores(held_out, actual)
    return ProbeResult(
        r2={name: float(score) for name, score in zip(target_names, scores, strict=True)},
        alpha={name: float(alpha) for name, alpha in zip(target_names, chosen, strict=True)},
        train_samples=train_count,
        test_samples=len(actual),
        features=width,
    )


@dataclass(frozen=True)
class RegionProbeResult:
    """How well a ridge regression on features tells a region label, on held-out samples.

    Attributes:
        r2: R^2 of the one-hot label over all its columns together
            (``1 - sum of residual squares / sum of total squares``).
        accuracy: Share of held-out samples whose largest predicted column is their region.
    """

    r2: float
    accuracy: float


def _one_hot(labels: npt.ArrayLike) -> FloatArray:
    """The one-hot ``(N, classes)`` of integer labels (classes present, in order).

    Raises:
        ValueError: If the labels are not integers >= 0 or take a single value.
    """
    label_array = np.asarray(labels)
    if label_array.ndim != 1 or not np.issubdtype(label_array.dtype, np.integer):
        if not np.all(np.equal(np.mod(label_array, 1), 0)):
            raise ValueError("region labels must be integers")
        label_array = label_array.astype(np.int64)
    if label_array.min() < 0:
        raise ValueError("region labels must not be negative")
    classes = np.unique(label_array)
    if len(classes) < 2:
        raise ValueError(
            f"region labels take a single value ({classes.tolist()}); nothing to probe"
        )
    return (label_array[:, None] == classes[None, :]).astype(np.float64)


def _region_scores(held_out: FloatArray, actual: FloatArray) -> RegionProbeResult:
    """R^2 over all one-hot columns together, and argmax accuracy."""
    residual = float(((actual - held_out) ** 2).sum())
    total = float(((actual - actual.mean(axis=0)) ** 2).sum())
    accuracy = float((held_out.argmax(axis=1) == actual.argmax(axis=1)).mean())
    return RegionProbeResult(r2=1.0 - residual / total if total > 0 else 0.0, accuracy=accuracy)


def region_probe(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    train_fraction: float = 0.7,
    seed: int = 0,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    folds: int = 5,
) -> RegionProbeResult:
    """Ridge regression from ``features`` to the one-hot of integer ``labels`` (see the result).

    Raises:
        ValueError: If the labels are not integers >= 0 or take a single value.
    """
    held_out, actual, _, _, _ = _fit_held_out(
        features, _one_hot(labels), train_fraction, seed, alphas, folds
    )
    return _region_scores(held_out, actual)


def repeated_probe(
    features: npt.ArrayLike,
    pose: npt.ArrayLike,
    pose_names: Sequence[str],
    regions: npt.ArrayLike | None,
    split_seeds: Sequence[int],
) -> dict[str, Any]:
    """The pose and region probes over several random splits of the same samples.

    Each split fits pose and one-hot region columns in one go (the same split, folds and
    per-column penalty choice as :func:`linear_probe` and :func:`region_probe` separately, at
    half the cost).

    Returns:
        ``pose_r2`` (per split, the mean over the pose targets), ``pose_r2_by_target`` (per
        target, the mean over splits), ``region_r2`` and ``region_accuracy`` (per split; None
        without regions) and their means over splits.
    """
    pose_array = np.asarray(pose, dtype=np.float64)
    if pose_array.ndim != 2 or pose_array.shape[1] != len(pose_names):
        raise ValueError(f"pose must be (N, {len(pose_names)}), got {pose_array.shape}")
    one_hot = _one_hot(regions) if regions is not None else np.zeros((len(pose_array), 0))
    targets = np.concatenate([pose_array, one_hot], axis=1)
    width = pose_array.shape[1]
    pose_scores: list[float] = []
    by_target: dict[str, list[float]] = {name: [] for name in pose_names}
    region_r2: list[float] = []
    region_accuracy: list[float] = []
    for split in split_seeds:
        held_out, actual, _, _, _ = _fit_held_out(features, targets, 0.7, split, DEFAULT_ALPHAS, 5)
        scores = r2_scores(held_out[:, :width], actual[:, :width])
        pose_scores.append(float(np.mean(scores)))
        for name, score in zip(pose_names, scores, strict=True):
            by_target[name].append(float(score))
        if regions is not None:
            region = _region_scores(held_out[:, width:], actual[:, width:])
            region_r2.append(region.r2)
            region_accuracy.append(region.accuracy)
    with_regions = regions is not None
    return {
        "pose_r2": pose_scores,
        "pose_r2_mean": float(np.mean(pose_scores)),
        "pose_r2_by_target": {name: float(np.mean(v)) for name, v in by_target.items()},
        "region_r2": region_r2 if with_regions else None,
        "region_r2_mean": float(np.mean(region_r2)) if with_regions else None,
        "region_accuracy": region_accuracy if with_regions else None,
        "region_accuracy_mean": float(np.mean(region_accuracy)) if with_regions else None,
    }
