import math

import pytest

from pamiq_ros.io.camera_info import CalibrationError, Intrinsics, load_calibration
from test.nodes.test_camera_sensor import CALIBRATION


def test_a_standard_calibration_file_is_read(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text(CALIBRATION)

    intrinsics, name = load_calibration(f"file://{path}")

    assert name == "wide" and (intrinsics.width, intrinsics.height) == (320, 180)
    assert intrinsics.k[0] == 200.0 and intrinsics.k[2] == 159.5
    assert intrinsics.d == (-0.1, 0.01, 0.0, 0.0, 0.0) and len(intrinsics.p) == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image_width: 320\n", "missing or invalid 'image_height'"),
        (CALIBRATION.replace("rows: 3, cols: 3, data: [200.0", "rows: 2, cols: 3, data: [200.0"),
         "camera_matrix \\(must be 3x3\\)"),
        ("[1, 2", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_calibration_file_is_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "camera.yaml"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message):
        load_calibration(path)
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibration(tmp_path / "missing.yaml")


def test_pinhole_and_fitting_follow_the_image():
    pinhole = Intrinsics.pinhole(640, 480, 90.0)
    assert pinhole.k[0] == pytest.approx(320.0) and pinhole.k[2] == 319.5

    half = pinhole.fitted(320, 240, "stretch")
    assert half.k[0] == pytest.approx(160.0) and half.k[2] == pytest.approx(159.5)
    assert half.k[5] == pytest.approx(119.5)

    padded = Intrinsics.pinhole(320, 180, 90.0).fitted(160, 120, "pad")  # 160x90 at row 15
    assert padded.k[4] == pytest.approx(80.0) and padded.k[5] == pytest.approx(44.5 + 15)
    # A pinhole's field of view survives the stretch of both axes alike.
    assert 2 * math.degrees(math.atan(80 / padded.k[0])) == pytest.approx(90.0)
