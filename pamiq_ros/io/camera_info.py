"""Camera intrinsics for ``sensor_msgs/CameraInfo``: from a calibration file or a field of view.

The file format is the standard ROS camera calibration YAML (what ``camera_calibration``
writes and ``camera_info_manager`` reads): ``image_width``, ``image_height``, ``camera_name``,
``camera_matrix``, ``distortion_model``, ``distortion_coefficients``,
``rectification_matrix`` and ``projection_matrix``, each matrix as ``{rows, cols, data}``.
Without a file, an ideal pinhole (no distortion) of a given horizontal field of view.
:meth:`Intrinsics.fitted` follows the image through the camera node's resize (crop, pad or
stretch), so the published intrinsics describe the published pixels.

No ROS import here.
"""

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from pamiq_ros.io.image_codec import fit_geometry

_MATRIX_SIZES = {
    "camera_matrix": (3, 3),
    "rectification_matrix": (3, 3),
    "projection_matrix": (3, 4),
}
IDENTITY_3X3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Intrinsics:
    """What a ``CameraInfo`` carries besides its header (row-major matrices)."""

    width: int
    height: int
    k: tuple[float, ...]
    d: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]
    distortion_model: str = "plumb_bob"

    @classmethod
    def pinhole(cls, width: int, height: int, horizontal_fov_deg: float) -> "Intrinsics":
        """An ideal pinhole with square pixels and the principal point at the centre."""
        if not 0 < horizontal_fov_deg < 180:
            raise ValueError(
                f"horizontal field of view must be in (0, 180), got {horizontal_fov_deg}"
            )
        focal = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        return cls(
            width, height,
            k=(focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0),
            d=(0.0, 0.0, 0.0, 0.0, 0.0),
            r=IDENTITY_3X3,
            p=(focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0),
        )  # fmt: skip

    def fitted(self, width: int, height: int, mode: str) -> "Intrinsics":
        """The intrinsics of this camera's image after ``fit_image(..., width, height, mode)``."""
        if (width, height) == (self.width, self.height):
            return self
        geometry = fit_geometry(self.width, self.height, width, height, mode)
        sx, sy = geometry.scaled_width / self.width, geometry.scaled_height / self.height

        # Pixel centres sit at integer coordinates: scale about -0.5, then shift.
        def x(value: float) -> float:
            return (value + 0.5) * sx - 0.5 + geometry.left

        def y(value: float) -> float:
            return (value + 0.5) * sy - 0.5 + geometry.top

        k, p = list(self.k), list(self.p)
        k[0], k[2], k[4], k[5] = k[0] * sx, x(k[2]), k[4] * sy, y(k[5])
        p[0], p[2], p[3] = p[0] * sx, x(p[2]), p[3] * sx
        p[5], p[6], p[7] = p[5] * sy, y(p[6]), p[7] * sy
        return replace(self, width=width, height=height, k=tuple(k), p=tuple(p))


def load_calibration(path: str | Path) -> tuple[Intrinsics, str]:
    """Reads a camera calibration YAML file; returns its intrinsics and camera name.

    Raises:
        CalibrationError: Naming the file and what is missing or wrong.
    """
    file = Path(str(path).removeprefix("file://")).expanduser()
    try:
        document = yaml.safe_load(file.read_text())
    except OSError as error:
        raise CalibrationError(f"cannot read calibration {file}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise CalibrationError(f"calibration {file} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise CalibrationError(f"calibration {file} must be a mapping")
    try:
        width, height = int(document["image_width"]), int(document["image_height"])
        matrices = {name: _matrix(document, name, size) for name, size in _MATRIX_SIZES.items()}
        distortion = document.get("distortion_coefficients") or {"data": []}
        d = tuple(float(value) for value in distortion["data"])
        model = str(document.get("distortion_model", "plumb_bob"))
    except (KeyError, TypeError, ValueError) as error:
        raise CalibrationError(f"calibration {file}: missing or invalid {error}") from error
    if width <= 0 or height <= 0:
        raise CalibrationError(f"calibration {file}: image size {width}x{height}")
    intrinsics = Intrinsics(
        width, height, matrices["camera_matrix"], d, matrices["rectification_matrix"],
        matrices["projection_matrix"], model,
    )  # fmt: skip
    return intrinsics, str(document.get("camera_name", ""))


def _matrix(document: dict[str, Any], name: str, size: tuple[int, int]) -> tuple[float, ...]:
    entry = document[name]
    values = tuple(float(value) for value in entry["data"])
    if (int(entry["rows"]), int(entry["cols"])) != size or len(values) != size[0] * size[1]:
        raise ValueError(f"{name} (must be {size[0]}x{size[1]})")
    if not all(math.isfinite(value) for value in values):
        raise ValueError(f"{name} (non-finite value)")
    return values


def fill_camera_info(message: Any, intrinsics: Intrinsics) -> None:
    """Writes the intrinsics into a ``sensor_msgs/CameraInfo`` (header left to the caller)."""
    message.width, message.height = intrinsics.width, intrinsics.height
    message.distortion_model = intrinsics.distortion_model
    message.d = list(intrinsics.d)
    message.k = list(intrinsics.k)
    message.r = list(intrinsics.r)
    message.p = list(intrinsics.p)
