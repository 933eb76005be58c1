"""The README's configuration table stays true to the settings the code reads."""

from pathlib import Path

from portfolio.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_given_the_settings_model_when_reading_the_readme_then_every_variable_is_documented():
    undocumented = [field.alias for field in Settings.model_fields.values() if f"`{field.alias}`" not in README]

    assert undocumented == []


def test_given_the_readme_when_a_newcomer_reads_it_then_the_two_commands_come_first():
    first_block = README.split("```", 2)[1]

    assert "make dev" in first_block
    assert "make test" in first_block
