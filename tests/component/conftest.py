"""Fixtures of the component tier."""

from __future__ import annotations

import pytest

from tests.component.serving_fixtures import RegisteredModel, registered_once


@pytest.fixture(scope="session")
def registered(tmp_path_factory) -> RegisteredModel:
    """The serving tests' model (registered once per session, shared with the unit tier)."""
    return registered_once(tmp_path_factory)
