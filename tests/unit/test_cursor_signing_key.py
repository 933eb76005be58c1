"""The API refuses to start in a deployed stage with the local cursor signing key, which anyone can read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from portfolio.settings import LOCAL_CURSOR_SIGNING_KEY, Settings, UnsafeSettingsError

from local_stack.functions import handler_locations

ROOT = Path(__file__).resolve().parents[2]
API_MODULE = handler_locations()["ApiFunction"].module

_IMPORT_API = f"""
import sys
sys.path[:0] = [{str(ROOT / "functions")!r}, {str(ROOT)!r}]
import {API_MODULE}
print("started")
"""


def _start_api(**variables: str) -> subprocess.CompletedProcess[str]:
    """Import the API's handler in a fresh interpreter, as Lambda's init does, with these variables."""
    environment = {name: value for name, value in os.environ.items() if name not in ("STAGE", "CURSOR_SIGNING_KEY")}
    environment.update(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", **variables)
    return subprocess.run(
        [sys.executable, "-c", _IMPORT_API], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(autouse=True)
def _no_stage_or_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGE", raising=False)
    monkeypatch.delenv("CURSOR_SIGNING_KEY", raising=False)


@pytest.mark.parametrize("key", [None, LOCAL_CURSOR_SIGNING_KEY], ids=["unset", "set-to-the-local-key"])
def test_given_a_deployed_stage_and_the_local_cursor_key_when_checked_then_refused_naming_the_variable(key):
    # Given STAGE=prod and no key of its own
    settings = Settings(STAGE="prod", **({} if key is None else {"CURSOR_SIGNING_KEY": key}))

    # When / Then
    with pytest.raises(UnsafeSettingsError, match="CURSOR_SIGNING_KEY is unset or the local default key"):
        settings.check_cursor_signing_key()


@pytest.mark.parametrize(
    "variables",
    [{"STAGE": "local"}, {}, {"STAGE": "prod", "CURSOR_SIGNING_KEY": "a-generated-secret"}],
    ids=["local", "stage-unset", "prod-with-a-key"],
)
def test_given_the_local_stage_or_a_key_of_its_own_when_checked_then_accepted(variables):
    # Given STAGE=local (also what an unset STAGE means), or a deployed stage with its own key
    settings = Settings(**variables)

    # When / Then: nothing to refuse
    settings.check_cursor_signing_key()


def test_given_stage_prod_without_a_cursor_key_when_the_api_starts_then_it_refuses_with_a_clear_message():
    # When the API function's handler is imported with STAGE=prod and CURSOR_SIGNING_KEY unset
    started = _start_api(STAGE="prod")

    # Then its init fails, saying what to set
    assert started.returncode != 0
    assert "started" not in started.stdout
    assert "UnsafeSettingsError" in started.stderr
    assert "set CURSOR_SIGNING_KEY_SECRET_ID to a secret of its own" in started.stderr


def test_given_stage_prod_with_a_cursor_key_of_its_own_when_the_api_starts_then_it_does():
    started = _start_api(STAGE="prod", CURSOR_SIGNING_KEY="a-generated-secret")

    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] == "started"
