"""Train a classifier on a dataset pinned by URI and sha256, then log and register it in MLflow.

    python -m training.train --data-uri s3://bucket/datasets/iris/<sha256>.csv --data-sha256 <sha256> \\
        --model-name lastmile-classifier --git-commit <sha> --build-digest sha256:... \\
        [--champion-alias champion] [--result-uri s3://bucket/results/<run>/training.json]

Environment: ``MLFLOW_TRACKING_URI`` (artifacts go through the server's proxy), ``LASTMILE_S3_ENDPOINT``
(empty for AWS itself) and the usual ``AWS_*`` credentials. The last line on stdout is one JSON object:
``{"run_id": ..., "model_version": ..., "metrics": {...}, "champion": ...}``, also written to ``--result-uri``.
With ``--champion-alias``, the model behind that alias is scored on the same held-out rows
(``champion: {"version", "run_id", "metrics"}``, or null when there is none), so a promotion gate compares
like with like. The version is tagged with its inputs, its reference predictions (``lastmile.reference``) and the
sha256 of every model file as stored (``lastmile.files``, JSON ``{relative path: sha256 hex}``, read back from the
registry: see :mod:`training.tracking`), which a replica checks before it loads the model.

The held-out split is part of the contract: ``train_test_split(X, y, test_size=0.25, random_state=42,
stratify=y)`` with ``X`` = every column but ``target``, in file order. It is logged as ``split.*`` params so
a promotion gate can recompute metrics on the same rows.

Exit codes: 0 trained and registered; 2 bad arguments or an unreadable dataset; 3 the dataset does not match
its expected sha256 (nothing is trained); 4 MLflow's tracking server did not answer, checked at ``/health``
before anything else and on every MLflow call (one line on stderr names it; a run may be left unfinished when it
went away halfway).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from importlib import metadata
from urllib.parse import urlparse

from training.tracking import (
    FILES_TAG,
    TrackingUnreachable,
    check_tracking_server,
    files_tag,
    mlflow_calls,
    stored_file_digests,
    tracking_url,
)

TARGET = "target"
SPLIT = {"test_size": 0.25, "random_state": 42, "stratify": TARGET}
EXIT_BAD_INPUT = 2
EXIT_HASH_MISMATCH = 3
REFERENCE_ROWS = 3
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
"""Types skops must be told to trust when MLflow saves the pipeline (the fitted tree's internals)."""
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


class InputError(Exception):
    """The dataset cannot be used; the message is the one line printed on stderr."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data-uri", default=env("LASTMILE_DATA_URI"), help="s3://bucket/key of the CSV dataset")
    parser.add_argument("--data-sha256", default=env("LASTMILE_DATA_SHA256"),
                        help="expected sha256 (hex) of the dataset; any other content is refused")
    parser.add_argument("--model-name", default=env("LASTMILE_MODEL_NAME", "lastmile-classifier"))
    parser.add_argument("--experiment", default=env("LASTMILE_EXPERIMENT", "lastmile"))
    parser.add_argument("--git-commit", default=env("LASTMILE_GIT_COMMIT", "unknown"))
    parser.add_argument("--build-digest", default=env("LASTMILE_BUILD_DIGEST", "unknown"))
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument("--min-samples-leaf", type=int, default=1)
    parser.add_argument("--champion-alias", default=None, help="score the model behind this alias too")
    parser.add_argument("--result-uri", default=None, help="s3://bucket/key to write the result JSON to")
    args = parser.parse_args(argv)
    if not args.data_uri or not args.data_sha256:
        parser.error("--data-uri and --data-sha256 are required (or LASTMILE_DATA_URI and LASTMILE_DATA_SHA256)")
    args.data_sha256 = args.data_sha256.lower().removeprefix("sha256:")
    return args


def s3_client():
    """boto3 against ``LASTMILE_S3_ENDPOINT`` (AWS itself when unset), credentials from ``AWS_*``."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("LASTMILE_S3_ENDPOINT") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        # OCI's S3 compatibility API rejects boto3's default checksum headers.
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                      s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


def s3_location(uri: str) -> tuple[str, str]:
    url = urlparse(uri)
    if url.scheme != "s3" or not url.netloc or not url.path.strip("/"):
        raise InputError(f"{uri!r} is not s3://bucket/key")
    return url.netloc, url.path.lstrip("/")


def read_dataset(uri: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = s3_location(uri)
    try:
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise InputError(f"cannot read dataset {uri}: {exc.response.get('Error', {}).get('Code', 'error')}") from None
    except BotoCoreError as exc:
        raise InputError(f"cannot read dataset {uri}: {type(exc).__name__}") from None


def write_result(uri: str, result: dict) -> None:
    bucket, key = s3_location(uri)
    body = json.dumps(result, sort_keys=True).encode()
    s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def verify(data: bytes, expected: str, uri: str) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise InputError(f"dataset hash mismatch for {uri}: expected sha256 {expected}, got {actual}; "
                         "refusing to train", EXIT_HASH_MISMATCH)
    return actual


def load_frame(data: bytes, uri: str):
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"dataset {uri} is not a CSV file ({exc})") from None
    if TARGET not in frame.columns or len(frame.columns) < 2:
        raise InputError(f"dataset {uri} needs feature columns and a '{TARGET}' column; has {list(frame.columns)}")
    return frame


def split(frame):
    """The train/held-out split every consumer must reproduce (see the module docstring)."""
    from sklearn.model_selection import train_test_split

    features, target = frame.drop(columns=[TARGET]), frame[TARGET]
    return train_test_split(features, target, test_size=SPLIT["test_size"], random_state=SPLIT["random_state"],
                            stratify=target)


def make_model(args: argparse.Namespace):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=args.max_depth, min_samples_leaf=args.min_samples_leaf, random_state=0)
    return Pipeline([("scale", StandardScaler()), ("classify", tree)])


def evaluate(model, x_test, y_test) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    predicted = model.predict(x_test)
    return {"accuracy": float(accuracy_score(y_test, predicted)),
            "f1_macro": float(f1_score(y_test, predicted, average="macro"))}


def score_champion(model_name: str, alias: str, x_test, y_test) -> dict | None:
    """The current ``@alias`` model scored on this run's held-out rows; None when the alias is not set."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        champion = mlflow.MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{champion.version}")
    return {"version": str(champion.version), "run_id": champion.run_id, "metrics": evaluate(model, x_test, y_test)}


def reference(model, frame, count: int = REFERENCE_ROWS) -> dict:
    """Rows spread over the dataset (first, middle, last...) and this model's predictions for them: every
    replica of this version must reproduce them before it serves (the version tag ``lastmile.reference``)."""
    features = frame.drop(columns=[TARGET])
    picks = features.iloc[[i * (len(features) - 1) // max(1, count - 1) for i in range(count)]]
    rows = [{k: float(v) for k, v in row.items()} for row in picks.to_dict(orient="records")]
    return {"rows": rows, "predictions": [p.item() if hasattr(p, "item") else p for p in model.predict(picks)]}


def pip_requirements() -> list[str]:
    """What serving needs to load the model: the versions this job actually ran with."""
    return [f"{name}=={metadata.version(name)}" for name in RUNTIME_PACKAGES]


def log_and_register(args, model, x_train, x_test, metrics: dict[str, float], tags: dict[str, str]) -> dict:
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.set_experiment(args.experiment)
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params({"model": "StandardScaler+DecisionTreeClassifier", "max_depth": args.max_depth,
                           "min_samples_leaf": args.min_samples_leaf, "rows.train": len(x_train),
                           "rows.test": len(x_test), **{f"split.{k}": v for k, v in SPLIT.items()}})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(x_test, model.predict(x_test)),
            input_example=x_train.head(5), pip_requirements=pip_requirements(),
            skops_trusted_types=TRUSTED_TYPES, registered_model_name=args.model_name,
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(args.model_name, version, key, value)
        record_stored_files(client, args.model_name, version)
    return {"run_id": run.info.run_id, "model_name": args.model_name, "model_version": version,
            "model_uri": f"models:/{args.model_name}/{version}", "metrics": metrics}


def record_stored_files(client, model_name: str, version: str) -> None:
    """Tag the version with the sha256 of its files as the registry now serves them (see the module docstring)."""
    started = time.monotonic()
    digests = stored_file_digests(client, model_name, version)
    client.set_model_version_tag(model_name, version, FILES_TAG, files_tag(digests))
    say(f"recorded the sha256 of {len(digests)} stored model files ({FILES_TAG}) "
        f"in {time.monotonic() - started:.2f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except (InputError, TrackingUnreachable) as exc:
        print(f"training: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


def run(args: argparse.Namespace) -> dict:
    """Check, train, log, register; raise :class:`InputError` or :class:`TrackingUnreachable` for one-line failures."""
    url = tracking_url()
    if url:
        check_tracking_server(url)
    if args.result_uri:
        s3_location(args.result_uri)
    data = read_dataset(args.data_uri)
    digest = verify(data, args.data_sha256, args.data_uri)
    say(f"dataset {args.data_uri}: {len(data)} bytes, sha256 {digest} as expected")
    frame = load_frame(data, args.data_uri)
    x_train, x_test, y_train, y_test = split(frame)
    model = make_model(args).fit(x_train, y_train)
    metrics = evaluate(model, x_test, y_test)
    say(f"trained on {len(x_train)} rows; held-out {len(x_test)} rows: " +
        ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    tags = {"lastmile.git_commit": args.git_commit, "lastmile.build_digest": args.build_digest,
            "lastmile.dataset_uri": args.data_uri, "lastmile.dataset_sha256": digest,
            "lastmile.reference": json.dumps(reference(model, frame), sort_keys=True)}
    with mlflow_calls(url):
        champion = score_champion(args.model_name, args.champion_alias, x_test, y_test) if args.champion_alias else None
        result = {**log_and_register(args, model, x_train, x_test, metrics, tags), "champion": champion}
    if args.result_uri:
        write_result(args.result_uri, result)
    return result


def say(line: str) -> None:
    print(f"training: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
