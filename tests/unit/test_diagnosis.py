"""Failures to causes and evidence: lastmile's errors, rollout messages and training jobs' ends."""

from __future__ import annotations

import pytest

from harness.domain.diagnosis import (
    CAUSES,
    DATA_INTEGRITY,
    ENDPOINT_CONFIGURATION,
    INTERNAL,
    MODEL_CODE,
    NETWORK_REACHABILITY,
    SECRET_ACCESS,
    TIMEOUT_CAPACITY,
    Context,
    Diagnosis,
    diagnose,
    diagnose_job,
)
from harness.domain.errors import (
    AuthError,
    BuildFailed,
    ConfigError,
    IntegrityError,
    LastmileError,
    NotBuilt,
    NotFound,
    UnreachableError,
    UserError,
)
from harness.domain.records import JobRun, JobState

MLFLOW = "http://127.0.0.1:5000"
REPLICA_LOG = "/state/deployer/logs/lastmile-r3-1.log"


class RolloutFailed(LastmileError):
    """Stands for harness.pipeline.rollout.RolloutFailed: the domain knows it by its message only."""


ERRORS = [
    # lastmile's own error types
    (UnreachableError(f"MLflow at {MLFLOW} did not answer (ConnectError)"), NETWORK_REACHABILITY, MLFLOW),
    (UnreachableError("object storage did not answer", url="http://127.0.0.1:9000"), NETWORK_REACHABILITY,
     "http://127.0.0.1:9000"),
    (UserError("no mlflow endpoint: the stand-ins are not up", hint="run `lastmile up`"), NETWORK_REACHABILITY,
     "no mlflow endpoint: the stand-ins are not up"),
    (AuthError(f"MLflow at {MLFLOW} refused the credentials of user 'lastmile' (401); check "
               "ports.model_registry.username and password"), SECRET_ACCESS, f"user 'lastmile' at {MLFLOW}"),
    (AuthError("registry refused us", secret_ref="secret:registry-password", url="http://127.0.0.1:5001"),
     SECRET_ACCESS, "secret:registry-password at http://127.0.0.1:5001"),
    (AuthError("deployer at http://127.0.0.1:8081 refused the token"), SECRET_ACCESS, "http://127.0.0.1:8081"),
    (NotFound("secret secret:mlflow-password is not in the local secret store; `lastmile up` creates the "
              "stand-ins' ones"), SECRET_ACCESS, "secret:mlflow-password"),
    (NotFound("secret env:OCI_KEY: environment variable OCI_KEY is not set"), SECRET_ACCESS, "env:OCI_KEY"),
    (NotFound("bucket lastmile-data not found"), ENDPOINT_CONFIGURATION, "bucket lastmile-data not found"),
    (NotFound("s3://lastmile-data/results/r1/training.json: not found"), DATA_INTEGRITY,
     "s3://lastmile-data/results/r1/training.json"),
    (IntegrityError("s3://lastmile-data/datasets/iris/ab.csv: content does not match its sha256 ab12…"),
     DATA_INTEGRITY, "s3://lastmile-data/datasets/iris/ab.csv"),
    (IntegrityError("127.0.0.1:5001/lastmile/serving@sha256:abc1: content does not match its digest"),
     DATA_INTEGRITY, "127.0.0.1:5001/lastmile/serving@sha256:abc1"),
    (ConfigError("lastmile.yaml (profiles.local): ports.deployer.replicas: must be at least 1"),
     ENDPOINT_CONFIGURATION, "lastmile.yaml (profiles.local): ports.deployer.replicas: must be at least 1"),
    (NotBuilt("flavor 'oke' is not built in this version"), ENDPOINT_CONFIGURATION,
     "flavor 'oke' is not built in this version"),
    (UserError("deployer at http://127.0.0.1:8081 refused the request: {\"detail\": \"smoke: extra field\"}"),
     ENDPOINT_CONFIGURATION, "deployer at http://127.0.0.1:8081 refused the request: {\"detail\": \"smoke: "
     "extra field\"}"),
    # a rollout's reason, whatever the rollback did afterwards
    (RolloutFailed(f"revision 3 (model version 2) rolled back: replica lastmile-r3-1 keeps failing: restarted 2 "
                   f"times (last exit code 3; log {REPLICA_LOG}); revision 2 (model version 1) serves"),
     MODEL_CODE, f"revision 3 (model version 2): replica lastmile-r3-1 keeps failing: restarted 2 times "
                 f"(last exit code 3; log {REPLICA_LOG})"),
    (RolloutFailed("revision 3 (model version 2) rolled back: replica lastmile-r3-1 keeps failing: restarted 2 "
                   "times (models:/m/2 does not reproduce the reference predictions); there is no previous "
                   "revision, so nothing serves"),
     MODEL_CODE, "revision 3 (model version 2): replica lastmile-r3-1 keeps failing: restarted 2 times "
                 "(models:/m/2 does not reproduce the reference predictions)"),
    (RolloutFailed("revision 3 (model version 2) rolled back: not ready within 60 s; the rollback to revision 2 "
                   "did not settle either: replica r2 keeps failing: restarted 2 times (last exit code 3; log x)"),
     TIMEOUT_CAPACITY, "revision 3 (model version 2): not ready within 60 s"),
    (RolloutFailed("revision 3 (model version 2) rolled back: replica r3 keeps failing: restarted 2 times (last "
                   "exit code 2; log y); revision 2 (model version 1) serves"),
     ENDPOINT_CONFIGURATION, "revision 3 (model version 2): replica r3 keeps failing: restarted 2 times (last "
                             "exit code 2; log y)"),
    (RolloutFailed("revision 3 rolled back: http://127.0.0.1:8080 predicted [0, 0, 0] (status 200) where model "
                   "version 2 recorded [0, 1, 2]; revision 2 (model version 1) serves"),
     MODEL_CODE, "revision 3: http://127.0.0.1:8080 predicted [0, 0, 0] (status 200) where model version 2 "
                 "recorded [0, 1, 2]"),
    (RolloutFailed("revision 3 rolled back: http://127.0.0.1:8080 did not answer (ReadTimeout); revision 2 "
                   "(model version 1) serves"), NETWORK_REACHABILITY, "http://127.0.0.1:8080"),
    (LastmileError("no prediction samples of version 2 reached s3://lastmile-predictions/predictions/m/2/ "
                   "within 5 s"), TIMEOUT_CAPACITY,
     "no prediction samples of version 2 reached s3://lastmile-predictions/predictions/m/2/ within 5 s"),
    # a build service's run: its log says why the step failed
    (BuildFailed("build run ocid1.devopsbuildrun.oc1..x FAILED: Step 'Build' failed with exit code 1\n"
                 "bundle_push: registry at http://127.0.0.1:5001 failed POST /v2/x/blobs/uploads/ (500: {}) after "
                 "2 retries\nbuild run failed: Step 'Build' failed with exit code 1"),
     TIMEOUT_CAPACITY, "http://127.0.0.1:5001"),
    (BuildFailed("build run ocid1.devopsbuildrun.oc1..x FAILED: Step 'Build' failed with exit code 1\n"
                 "SyntaxError: invalid syntax"), MODEL_CODE,
     "build run ocid1.devopsbuildrun.oc1..x FAILED: Step 'Build' failed with exit code 1"),
    # exceptions lastmile did not raise on purpose
    (TimeoutError("the read timed out"), TIMEOUT_CAPACITY, "TimeoutError: the read timed out"),
    (ConnectionRefusedError(111, "Connection refused"), NETWORK_REACHABILITY,
     "ConnectionRefusedError: [Errno 111] Connection refused"),
    (KeyError("smoke"), INTERNAL, "KeyError: 'smoke'"),
]


@pytest.mark.parametrize(("exc", "cause", "evidence"), ERRORS, ids=[f"{type(e).__name__}-{i}"
                                                                     for i, (e, _, _) in enumerate(ERRORS)])
def test_errors_map_to_a_cause_and_its_evidence(exc, cause, evidence):
    assert diagnose(exc) == Diagnosis(cause, evidence)


def _failed(exit_code: int | None, message: str = "", state: JobState = JobState.FAILED) -> JobRun:
    return JobRun("jobrun-1", "train", state, exit_code, "/state/jobs/jobrun-1/job.log",
                  message or (f"exited with code {exit_code}" if exit_code else ""))


TRACEBACK_TAIL = """Traceback (most recent call last):
  File "/work/training/train.py", line 403, in main
    model = make_model(args).fit(x_train, y_train)
ValueError: Input X contains NaN."""

MLFLOW_DOWN_TAIL = """training: trained on 112 rows; held-out 38 rows: accuracy=0.9737
Traceback (most recent call last):
  File "/w/site-packages/urllib3/connection.py", line 198, in _new_conn
ConnectionRefusedError: [Errno 111] Connection refused
  File "/w/site-packages/mlflow/utils/rest_utils.py", line 401, in http_request
mlflow.exceptions.MlflowException: API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/create failed with \
exception HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url: /api/2.0/mlflow/runs/create"""

JOBS = [
    (_failed(3), "training: dataset hash mismatch for s3://d/iris.csv: expected sha256 ab, got cd; refusing to train",
     DATA_INTEGRITY, "training: dataset hash mismatch for s3://d/iris.csv: expected sha256 ab, got cd; refusing "
                     "to train"),
    (_failed(4), f"training: MLflow at {MLFLOW} did not answer (ConnectionError); is it up? run `lastmile up`",
     NETWORK_REACHABILITY, MLFLOW),
    (_failed(1), TRACEBACK_TAIL, MODEL_CODE, "ValueError: Input X contains NaN."),
    (_failed(1), "loading data\nValueError: bad column", MODEL_CODE, "ValueError: bad column"),
    (_failed(None, "timed out after 600 s"), "[lastmile] timed out after 600 s; process group stopped",
     TIMEOUT_CAPACITY, "timed out after 600 s"),
    (_failed(None, "ended by signal 9"), "", TIMEOUT_CAPACITY, "ended by signal 9 (SIGKILL: out of memory?)"),
    (_failed(1), MLFLOW_DOWN_TAIL, NETWORK_REACHABILITY, "http://127.0.0.1:5000/api/2.0/mlflow/runs/create"),
    (_failed(1), "requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=5000): Max "
                 "retries exceeded", NETWORK_REACHABILITY, "http://127.0.0.1:5000"),
    (_failed(2), 'training: cannot read dataset s3://d/iris.csv: EndpointConnectionError: Could not connect to '
                 'the endpoint URL: "http://127.0.0.1:9000/d/iris.csv"', NETWORK_REACHABILITY,
     "http://127.0.0.1:9000/d/iris.csv"),
    (_failed(1), "mlflow.exceptions.MlflowException: API request to endpoint /api/2.0/mlflow/runs/create failed "
                 "with error code 401 != 200. Response body: 'You are not authenticated.'", SECRET_ACCESS,
     "mlflow.exceptions.MlflowException: API request to endpoint /api/2.0/mlflow/runs/create failed with error "
     "code 401 != 200. Response body: 'You are not authenticated.'"),
    (_failed(2), "training: cannot read dataset s3://d/iris.csv: AccessDenied", SECRET_ACCESS,
     "training: cannot read dataset s3://d/iris.csv: AccessDenied"),
    (_failed(2), "training: cannot read dataset s3://d/iris.csv: NoSuchKey", DATA_INTEGRITY,
     "training: cannot read dataset s3://d/iris.csv: NoSuchKey"),
    (_failed(None, "could not pull bundle: registry at http://127.0.0.1:5001 did not answer"), "",
     NETWORK_REACHABILITY, "http://127.0.0.1:5001"),
    (_failed(None, "canceled", JobState.CANCELED), "", TIMEOUT_CAPACITY, "job jobrun-1 was canceled"),
    (_failed(None, "Job run timed out"), "", TIMEOUT_CAPACITY, "Job run timed out"),  # OCI Data Science's details
    (_failed(None, "Job run artifact execution failed: ended by signal 9"), "", TIMEOUT_CAPACITY,
     "Job run artifact execution failed: ended by signal 9 (SIGKILL: out of memory?)"),
    (_failed(None, "Job run bootstrap failure: the container image could not be pulled (could not pull bundle: "
                   "registry at http://127.0.0.1:5001 did not answer)"), "", NETWORK_REACHABILITY,
     "http://127.0.0.1:5001"),
]


@pytest.mark.parametrize(("job", "tail", "cause", "evidence"), JOBS, ids=[f"job-{i}" for i in range(len(JOBS))])
def test_failed_jobs_map_to_a_cause_and_its_evidence(job, tail, cause, evidence):
    assert diagnose_job(job, tail) == Diagnosis(cause, evidence)


def test_a_traceback_line_number_is_not_an_http_status():
    assert diagnose_job(_failed(1), TRACEBACK_TAIL).cause == MODEL_CODE  # "line 403" is not a 403


def test_an_error_that_carries_its_diagnosis_keeps_it():
    exc = LastmileError("training job FAILED: exited with code 4")
    exc.diagnosis = Diagnosis(NETWORK_REACHABILITY, MLFLOW)  # type: ignore[attr-defined]
    assert diagnose(exc, Context(stage="training")) == Diagnosis(NETWORK_REACHABILITY, MLFLOW)


def test_a_job_in_the_context_is_diagnosed_by_its_end():
    context = Context(stage="training", job=_failed(3), log_tail="training: dataset hash mismatch for s3://d/x")
    assert diagnose(LastmileError("training job FAILED"), context).cause == DATA_INTEGRITY


def test_a_training_failure_without_evidence_is_model_code():
    assert diagnose(LastmileError("training job succeeded but wrote no result to results/r/training.json"),
                    Context(stage="training")).cause == MODEL_CODE


def test_every_table_row_uses_one_of_the_six_causes():
    assert len(CAUSES) == 6
    used = {cause for _, cause, _ in ERRORS} | {cause for _, _, cause, _ in JOBS}
    assert used - {INTERNAL} == set(CAUSES)


def test_diagnosis_round_trips_through_json():
    diagnosis = Diagnosis(SECRET_ACCESS, "secret:mlflow-password")
    assert Diagnosis.from_json(diagnosis.to_json()) == diagnosis
