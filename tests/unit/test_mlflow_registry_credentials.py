"""MLflow's client reads basic-auth credentials from the process environment, per request: two registries of two
servers in one process (a drill's second harness, a test's) must each send their own, whichever was built last."""

from __future__ import annotations

import os

from adapters.local.mlflow_registry import MlflowModelRegistry
from harness.domain.records import Secret


def test_each_registry_puts_its_own_credentials_back_before_it_calls(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    first = MlflowModelRegistry("http://127.0.0.1:1", "first", Secret("first-password"))
    second = MlflowModelRegistry("http://127.0.0.1:2", "second", Secret("second-password"))
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "second-password"
    first._checked = True  # its server was reached once already: no request now
    first._ping()
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == \
        ("first", "first-password")
    second._checked = True
    second._ping()
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "second-password"
