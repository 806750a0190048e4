"""The README's parameter tables are the ones the declarations generate."""

from pathlib import Path

from pamiq_ros.core.settings import specs
from pamiq_ros.nodes.parameter_table import (
    BEGIN_MARKER,
    END_MARKER,
    node_settings,
    parameter_tables,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_holds_the_generated_tables():
    text = README.read_text()
    begin, end = text.index(BEGIN_MARKER), text.index(END_MARKER) + len(END_MARKER)
    assert text[begin:end] == parameter_tables(), (
        "README parameter tables differ from the declarations: regenerate them with "
        "python -m pamiq_ros.nodes.parameter_table"
    )


def test_every_declared_parameter_has_a_row_with_its_default():
    tables = parameter_tables()
    for settings_type in node_settings().values():
        for name, spec in specs(settings_type).items():
            assert f"| `{name}` | {type(spec.default).__name__} | `{spec.default!r}` |" in tables
