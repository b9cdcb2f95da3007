"""Settings on pydantic-settings: every variable of the table, its parsing, and one line naming a bad one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving import Settings, SettingsError
from serving.settings import Reference

URI = {"LASTMILE_SERVING_MODEL_URI": "models:/churn/3"}
REFERENCE = {"rows": [{"x": 1.0}, {"x": 2.5}], "predictions": [0, 1]}


@pytest.mark.parametrize("raw, value", [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True),
                                        ("no", False), ("ON", True), ("off", False), ("", False)])
def test_booleans_read_the_usual_words_in_any_case(raw, value):
    settings = Settings.from_env({**URI, "LASTMILE_SERVING_COALESCE": raw,
                                  "LASTMILE_SERVING_REJECT_UNKNOWN_COLUMNS": raw})
    assert (settings.coalesce, settings.reject_unknown_columns) == (value, value)


@pytest.mark.parametrize("raw", ["maybe", "t", "2", "enabled"])
def test_other_boolean_words_are_refused_in_one_line_naming_the_variable(raw):
    with pytest.raises(SettingsError, match=r"^LASTMILE_SERVING_REJECT_UNKNOWN_COLUMNS: .*is not a boolean") as caught:
        Settings.from_env({**URI, "LASTMILE_SERVING_REJECT_UNKNOWN_COLUMNS": raw})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["LASTMILE_SERVING_MODEL_DIR", "LASTMILE_SERVING_PREDICTION_LOG",
                                  "LASTMILE_SERVING_SAMPLES_URI", "LASTMILE_SERVING_S3_ENDPOINT",
                                  "LASTMILE_SERVING_REFERENCE"])
def test_an_empty_optional_variable_means_unset(name):
    settings = Settings.from_env({**URI, name: ""})
    assert getattr(settings, name.removeprefix("LASTMILE_SERVING_").lower()) is None


def test_every_variable_of_the_table_has_its_default():
    settings = Settings.from_env(URI)
    assert (settings.tracking_uri, settings.model_dir, settings.reference) == (None, None, None)
    assert (settings.build_digest, settings.max_body_bytes, settings.prediction_log) == ("unknown", 1024 * 1024, None)
    assert (settings.prediction_sample_rate, settings.samples_uri, settings.s3_endpoint) == (1.0, None, None)
    assert (settings.samples_flush_seconds, settings.reject_unknown_columns, settings.coalesce) == (1.0, False, True)
    assert (settings.load_retry_seconds, settings.log_level) == (5.0, "INFO")
    assert settings.replica


def test_the_new_variables_are_read():
    settings = Settings.from_env({**URI, "LASTMILE_SERVING_REFERENCE": json.dumps(REFERENCE),
                                  "LASTMILE_SERVING_SAMPLES_URI": "s3://lastmile-samples/predictions",
                                  "LASTMILE_SERVING_S3_ENDPOINT": "http://127.0.0.1:9000",
                                  "LASTMILE_SERVING_SAMPLES_FLUSH_SECONDS": "0.25"})
    assert settings.reference == Reference(**REFERENCE)
    assert (settings.samples_bucket, settings.samples_prefix) == ("lastmile-samples", "predictions/")
    assert (settings.s3_endpoint, settings.samples_flush_seconds) == ("http://127.0.0.1:9000", 0.25)


@pytest.mark.parametrize("uri, bucket, prefix", [("s3://b", "b", ""), ("s3://b/", "b", ""),
                                                 ("s3://b/p/q/", "b", "p/q/"), ("s3://My_Bucket/p", "My_Bucket", "p/")])
def test_the_samples_uri_gives_a_bucket_and_a_prefix_ending_in_a_slash(uri, bucket, prefix):
    settings = Settings(model_uri="models:/m/1", samples_uri=uri)
    assert (settings.samples_bucket, settings.samples_prefix) == (bucket, prefix)


@pytest.mark.parametrize("name, raw, says", [
    ("LASTMILE_SERVING_REFERENCE", "{rows: [", "not valid JSON"),
    ("LASTMILE_SERVING_REFERENCE", '{"rows": [], "predictions": []}', "rows"),
    ("LASTMILE_SERVING_REFERENCE", '{"rows": [{"x": 1}], "predictions": [1, 2]}', "1 rows but 2 predictions"),
    ("LASTMILE_SERVING_REFERENCE", '{"rows": [1], "predictions": [1]}', "rows"),
    ("LASTMILE_SERVING_SAMPLES_URI", "https://bucket/prefix", "s3://"),
    ("LASTMILE_SERVING_SAMPLES_FLUSH_SECONDS", "0", "greater than 0"),
    ("LASTMILE_SERVING_S3_ENDPOINT", "objectstorage.example", "http"),
    ("LASTMILE_SERVING_LOAD_RETRY_SECONDS", "soon", "number"),
])
def test_a_bad_new_variable_is_named_in_one_line(name, raw, says):
    with pytest.raises(SettingsError, match=rf"^{name}: ") as caught:
        Settings.from_env({**URI, name: raw})
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_tracking_uri_comes_from_mlflows_own_variable():
    assert Settings.from_env({**URI, "MLFLOW_TRACKING_URI": "http://mlflow:5000"}).tracking_uri == "http://mlflow:5000"
    assert Settings(model_uri="models:/m/1", tracking_uri="sqlite:///x.db").tracking_uri == "sqlite:///x.db"


def test_unknown_lastmile_variables_are_ignored():
    assert Settings.from_env({**URI, "LASTMILE_SERVING_NO_SUCH_THING": "1"}).model_uri == "models:/churn/3"


def test_direct_construction_never_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("LASTMILE_SERVING_REPLICA", "from-the-environment")
    monkeypatch.setenv("LASTMILE_SERVING_MODEL_DIR", "/models/m/1")
    settings = Settings(model_uri="models:/m/1")
    assert settings.replica != "from-the-environment"
    assert settings.model_dir is None


def test_from_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("LASTMILE_SERVING_MODEL_URI", "models:/m/7")
    monkeypatch.setenv("LASTMILE_SERVING_PREDICTION_LOG", "/tmp/predictions.jsonl")
    settings = Settings.from_env()
    assert settings.model_version == "7" and settings.prediction_log == Path("/tmp/predictions.jsonl")


def test_a_reference_can_be_given_directly_as_a_mapping():
    assert Settings(model_uri="models:/m/1", reference=REFERENCE).reference.predictions == [0, 1]

