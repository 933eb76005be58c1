"""The template, raw and translated, read once per session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.sam import Stack, load_sam_template, translate


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def stack(sam_template: dict[str, Any]) -> Stack:
    return Stack(translate(sam_template))
