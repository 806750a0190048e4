"""Experiences: the same room in other looks, and the region labels."""

import numpy as np
import pytest

from pamiq_ros.sim.experiences import EXPERIENCES, REGION_NAMES, experience_layout, region_of
from pamiq_ros.sim.renderer import Renderer
from pamiq_ros.sim.world import Pose, default_layout


def test_experiences_keep_the_geometry_and_change_the_look():
    base = default_layout(3)
    views = {}
    for name in EXPERIENCES:
        layout = experience_layout(name, 3)
        assert [(w.start, w.end) for w in layout.walls] == [(w.start, w.end) for w in base.walls]
        assert [p.position(1.0) for p in layout.pillars] == [p.position(1.0) for p in base.pillars]
        views[name] = Renderer(layout, 64, 48).render_view(Pose(0.0, 0.0, 0.3)).astype(float)
    assert experience_layout("A", 3) == base
    for first, second in (("A", "B"), ("A", "C"), ("B", "C")):
        assert np.abs(views[first] - views[second]).mean() > 20.0, (first, second)


def test_unknown_experience_is_refused():
    with pytest.raises(ValueError, match="unknown experience 'Z'"):
        experience_layout("Z")


def test_regions_are_the_quarters_of_the_room():
    assert [REGION_NAMES[region_of(x, y)] for x, y in ((-1, -1), (1, -1), (-1, 1), (1, 1))] == [
        "south_west", "south_east", "north_west", "north_east",
    ]  # fmt: skip
