"""Every setting is documented in README's table, and parsed from the environment."""

import dataclasses
from pathlib import Path

import pytest

from hindsight.settings import SETTINGS, Settings, rewrite_readme

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_settings_table_is_generated_from_the_declarations():
    """README's table is what `make docs` writes; edit settings.py, then run `make docs`."""
    assert rewrite_readme(README) == README, "README's settings table is stale: run `make docs`"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_setting_is_documented_in_the_readme_table(setting):
    assert f"| `{setting.env}` |" in README


def test_every_settings_field_is_declared_once_with_its_variable():
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    declared = {s.field: s.default for s in SETTINGS}
    assert declared == fields
    envs = [s.env for s in SETTINGS]
    assert len(set(envs)) == len(envs) and all(e.startswith("HINDSIGHT_") for e in envs)


def test_environment_is_parsed_and_bad_values_are_named():
    s = Settings.from_env({"HINDSIGHT_WORKERS": "3", "HINDSIGHT_TRUST_FORWARDED_FOR": "yes",
                           "HINDSIGHT_POOL_TIMEOUT": "1.5"})
    assert (s.workers, s.trust_forwarded_for, s.pool_timeout) == (3, True, 1.5)
    with pytest.raises(SystemExit, match="HINDSIGHT_WORKERS"):
        Settings.from_env({"HINDSIGHT_WORKERS": "many"})
