"""Fixtures shared by the serving tests: one registered model for the whole session (registering takes seconds)."""

from __future__ import annotations

import pytest

from tests.unit.serving_fixtures import RegisteredModel, register


@pytest.fixture(scope="session")
def registered(tmp_path_factory) -> RegisteredModel:
    return register(tmp_path_factory.mktemp("mlflow"))
