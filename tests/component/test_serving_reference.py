"""The reference self-check: a version that does not answer the recorded rows as recorded is not served."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving import Settings, create_app
from serving.model import load_model
from serving.reference import check_reference
from serving.schema import Column, Schema
from serving.served import ModelLoadError, ModelRejected, ServedModel
from serving.settings import Reference
from tests.component.serving_fixtures import RegisteredModel

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


class _Doubler:
    classes_ = None

    def predict(self, features):
        return features[:, 0] * 2


def _doubler() -> ServedModel:
    return ServedModel(name="m", version="4", run_id=None, source=None, estimator=_Doubler(),
                       schema=Schema([Column("x", "double")]), example_rows=[[1.0]])


def test_matching_predictions_pass():
    check_reference(_doubler(), Reference(rows=[{"x": 1.5}, {"x": "2"}], predictions=[3.0, 4]))


def test_a_mismatch_says_which_rows_and_what_came_out():
    with pytest.raises(ModelLoadError, match=r"models:/m/4 does not reproduce the reference predictions "
                                             r"\(rows \[1\] differ\): got \[3\.0, 4\.0\], expected \[3\.0, 5\.0\]"):
        check_reference(_doubler(), Reference(rows=[{"x": 1.5}, {"x": 2}], predictions=[3.0, 5.0]))


def test_reference_rows_the_parser_refuses_fail_the_load():
    with pytest.raises(ModelLoadError, match=r"does not reproduce the reference predictions: .*'x'"):
        check_reference(_doubler(), Reference(rows=[{"y": 1.0}], predictions=[2.0]))


def test_unknown_columns_are_refused_when_invocations_refuses_them():
    reference = Reference(rows=[{"x": 1.0, "extra": 0}], predictions=[2.0])
    check_reference(_doubler(), reference)
    with pytest.raises(ModelLoadError, match="'extra'"):
        check_reference(_doubler(), reference, reject_unknown_columns=True)


def _settings(model: RegisteredModel, predictions: list, **overrides) -> Settings:
    values = {"model_uri": f"models:/{model.name}/{model.champion_version}", "tracking_uri": model.tracking_uri,
              "replica": "r", "load_retry_seconds": 0,
              "reference": {"rows": model.records(), "predictions": predictions}, **overrides}
    return Settings(**values)


def test_the_registered_version_reproduces_its_own_predictions_from_a_model_dir(registered):
    model = load_model(_settings(registered, registered.predictions, model_dir=registered.model_dir))
    assert model.predict(registered.rows) == registered.predictions


def test_a_model_dir_that_does_not_reproduce_them_fails_the_start(registered):
    wrong = [(p + 1) % 3 for p in registered.predictions]
    settings = _settings(registered, wrong, model_dir=registered.model_dir)
    with (pytest.raises(ModelLoadError, match=r"models:/iris/1 does not reproduce the reference predictions") as caught,
          TestClient(create_app(settings))):
        pass
    assert f"got {registered.predictions}, expected {wrong}" in str(caught.value)


def test_from_the_registry_a_mismatch_fails_the_start_as_it_cannot_heal(registered):
    """The version is immutable: loading it again gives the same predictions, so the app does not retry."""
    wrong = [(p + 1) % 3 for p in registered.predictions]
    app = create_app(_settings(registered, wrong, load_retry_seconds=0.2))
    with pytest.raises(ModelRejected, match="does not reproduce the reference predictions"), TestClient(app):
        pass
    assert app.state.serving.failed_for_good
