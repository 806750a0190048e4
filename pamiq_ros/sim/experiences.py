"""Distinct experiences of the simulated world, for continual-learning experiments.

An experience is a look of the same room: the geometry (walls, pillars, regions) is the
default layout's, so the avatar moves and collides the same, while every colour and floor
pattern changes. An encoder trained on one look and then another has to keep both, which is
what the continual-learning lab (``pamiq_ros.bench.continual``) measures. The ``sim_world``
node chooses one with its ``experience`` parameter and switches at run time when the
parameter is set (``ros2 param set /sim_world experience B``, the SetParameters service).

Each view also has a *region* label: the quarter of the room the camera stands in
(:func:`region_of`), a class a linear probe can be asked to recover. No ROS here.
"""

import dataclasses

from pamiq_ros.sim.world import Color, FloorPattern, FloorRegion, WorldLayout, default_layout

EXPERIENCES = ("A", "B", "C")
"""A: the default look. B: colours rotated (R->G->B->R), other floor patterns. C: negative
colours, patterns swapped the other way."""

REGION_NAMES = ("south_west", "south_east", "north_west", "north_east")
"""The region labels, by quarter of the room (x below or above 0, y below or above 0)."""

_PATTERNS_B: dict[FloorPattern, FloorPattern] = {
    "checker": "stripes_y",
    "stripes_x": "checker",
    "stripes_y": "diagonal",
    "diagonal": "stripes_x",
    "solid": "checker",
}
_PATTERNS_C: dict[FloorPattern, FloorPattern] = {
    value: key for key, value in _PATTERNS_B.items() if key != "solid"
}


def _rotate(color: Color) -> Color:
    return (color[2], color[0], color[1])


def _negative(color: Color) -> Color:
    return (255 - color[0], 255 - color[1], 255 - color[2])


def experience_layout(name: str, seed: int = 0) -> WorldLayout:
    """The default layout of ``seed`` in the look of experience ``name``.

    Raises:
        ValueError: If ``name`` is not one of :data:`EXPERIENCES`.
    """
    if name not in EXPERIENCES:
        raise ValueError(f"unknown experience {name!r}; experiences are {', '.join(EXPERIENCES)}")
    layout = default_layout(seed)
    if name == "A":
        return layout
    recolor = _rotate if name == "B" else _negative
    patterns = _PATTERNS_B if name == "B" else _PATTERNS_C

    def floor(region: FloorRegion) -> FloorRegion:
        return dataclasses.replace(
            region,
            color_a=recolor(region.color_a),
            color_b=recolor(region.color_b),
            pattern=patterns.get(region.pattern, region.pattern),
        )

    return dataclasses.replace(
        layout,
        walls=tuple(dataclasses.replace(wall, color=recolor(wall.color)) for wall in layout.walls),
        base_floor=floor(layout.base_floor),
        floor_regions=tuple(floor(region) for region in layout.floor_regions),
        pillars=tuple(
            dataclasses.replace(pillar, color=recolor(pillar.color)) for pillar in layout.pillars
        ),
    )


def region_of(x: float, y: float) -> int:
    """The region label (index into :data:`REGION_NAMES`) of a position."""
    return int(x >= 0.0) + 2 * int(y >= 0.0)
