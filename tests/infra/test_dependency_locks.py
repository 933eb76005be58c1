"""The locks agree with pyproject.toml's ranges: what the layer ships and what .venv gets (`make lock`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.dependency_audit import Pin, read_lock

ROOT = Path(__file__).resolve().parents[2]
LAYER_LOCK = ROOT / "layers" / "shared" / "requirements.txt"
DEV_LOCK = ROOT / "requirements" / "dev.lock"

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
DEV = [Requirement(line) for line in PYPROJECT["project"]["optional-dependencies"]["dev"]]
# .venv installs the project with --no-build-isolation: the build backend comes from the dev lock too.
BUILD = [Requirement(line) for line in PYPROJECT["build-system"]["requires"]]


def assert_pinned_within_range(lock: Path, requirement: Requirement) -> None:
    versions = [pin.version for pin in read_lock(lock) if pin.name == canonicalize_name(requirement.name)]

    assert versions, f"{requirement.name} is not in {lock.relative_to(ROOT)}: run `make lock`"
    outside = [str(version) for version in versions if not requirement.specifier.contains(version, prereleases=True)]
    assert outside == [], f"{lock.relative_to(ROOT)} pins {requirement.name} {outside}, outside {requirement}"


@pytest.mark.parametrize("requirement", RUNTIME, ids=str)
def test_given_a_runtime_dependency_then_the_layer_lock_pins_it_within_pyproject_s_range(requirement):
    assert_pinned_within_range(LAYER_LOCK, requirement)


@pytest.mark.parametrize("requirement", RUNTIME + DEV + BUILD, ids=str)
def test_given_any_declared_dependency_then_the_dev_lock_pins_it_within_pyproject_s_range(requirement):
    assert_pinned_within_range(DEV_LOCK, requirement)


def test_given_both_locks_then_the_layer_ships_the_very_versions_the_tests_run_against():
    tested = {pin.name: pin.version for pin in read_lock(DEV_LOCK)}

    differing = {
        pin.name: f"layer {pin.version}, dev {tested.get(pin.name)}"
        for pin in read_lock(LAYER_LOCK)
        if tested.get(pin.name) != pin.version
    }

    assert differing == {}, "run `make lock`"


@pytest.mark.parametrize("lock", [LAYER_LOCK, DEV_LOCK], ids=lambda lock: str(lock.relative_to(ROOT)))
def test_given_a_lock_then_every_pin_carries_sha256_hashes_so_pip_installs_it_in_hash_checking_mode(lock):
    def hashed(pin: Pin) -> bool:
        return bool(pin.hashes) and all(value.startswith("sha256:") for value in pin.hashes)

    pins = read_lock(lock)

    assert pins
    assert [pin.name for pin in pins if not hashed(pin)] == []
