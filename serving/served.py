"""A loaded model version and what both loaders share to build one: the input schema, probe rows, the input form.

:mod:`serving.model` (the registry) and :mod:`serving.model_dir` (a downloaded version) both build a
:class:`ServedModel` with these helpers; neither imports the other's loading code.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.schema import Column, InputError, Schema

_NUMPY_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "boolean": "bool",
                 "string": "object"}


class ModelLoadError(RuntimeError):
    """The configured model cannot be served; the message says why."""


class ModelRejected(ModelLoadError):
    """The version was fetched and is wrong as it stands (files that differ from their recorded digests, no
    reference reproduced, no sklearn flavor or no usable signature): loading the same version again gives the same
    answer, so a replica exits rather than retry (see :mod:`serving.app`)."""


class ModelError(InputError):
    """The model raised while evaluating rows that passed the signature checks (MLflow answers 400 too)."""

    def __init__(self, exc: Exception):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        super().__init__(f"the model could not evaluate the input: {type(exc).__name__}: {text[:300]}")


@dataclass
class ServedModel:
    """A loaded model version with what the endpoints need to call it."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    estimator: Any
    schema: Schema
    example_rows: list[list]
    tags: dict[str, str] = field(default_factory=dict)
    frame_input: bool = False
    local_dir: str | None = None

    def __post_init__(self):
        classes = getattr(self.estimator, "classes_", None)
        self.has_proba = classes is not None and hasattr(self.estimator, "predict_proba")
        self.class_keys = tuple(str(c) for c in np.asarray(classes).tolist()) if classes is not None else ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def model_input(self, rows: list[list]):
        """Rows as the estimator takes them: a float array, or a DataFrame typed by the signature."""
        if not self.frame_input:
            return np.array(rows, dtype=np.float64)
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(self.schema.names))
        dtypes = {c.name: _NUMPY_DTYPES[c.kind] for c in self.schema.columns if c.kind in _NUMPY_DTYPES}
        try:
            return frame.astype(dtypes)
        except (ValueError, TypeError):
            return frame

    def predict(self, rows: list[list]) -> list:
        """Predictions as plain Python values, one per row; a model failure raises :class:`ModelError`.

        scikit-learn's own input checks run at every step, as under ``mlflow models serve``: finite inputs that
        overflow inside the pipeline (1e308 scaled, or cast to float32 by a tree) are refused there, never answered
        from the infinities they became. Skipping them (``assume_finite``) saved about 6 µs a call and did that.
        """
        try:
            return self.estimator.predict(self.model_input(rows)).tolist()
        except Exception as exc:
            raise ModelError(exc) from exc

    def predict_with_proba(self, rows: list[list]) -> list[tuple[Any, dict[str, float] | None]]:
        """``(prediction, {class: probability})`` per row; probabilities are None for models without them."""
        try:
            features = self.model_input(rows)
            predictions = self.estimator.predict(features).tolist()
            if not self.has_proba:
                return [(p, None) for p in predictions]
            probabilities = self.estimator.predict_proba(features).tolist()
        except Exception as exc:
            raise ModelError(exc) from exc
        keys = self.class_keys
        return [(p, dict(zip(keys, row, strict=True))) for p, row in zip(predictions, probabilities, strict=True)]

    def close(self) -> None:
        """Delete the temporary copy the registry loader downloaded (a deployer's directory is never touched)."""
        if self.local_dir:
            shutil.rmtree(self.local_dir, ignore_errors=True)


def choose_input_form(model: ServedModel) -> None:
    """Feed the model a numpy array when it gives the same answers as a DataFrame, a DataFrame otherwise.

    Estimators fitted on a DataFrame warn that a numpy array "does not have valid feature names"; the check
    below is what makes skipping the frame safe, so that warning is silenced for this process.
    """
    warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
    answers: dict[bool, Any] = {}
    for frame_input in (True, False) if model.schema.numeric else (True,):
        model.frame_input = frame_input
        try:
            answers[frame_input] = np.asarray(model.estimator.predict(model.model_input(model.example_rows)))
        except Exception as exc:
            answers[frame_input] = exc
    by_frame, by_array = answers[True], answers.get(False)
    if isinstance(by_array, np.ndarray) and (isinstance(by_frame, Exception) or np.array_equal(by_frame, by_array)):
        model.frame_input = False
    elif isinstance(by_frame, np.ndarray):
        model.frame_input = True
    else:
        raise ModelRejected(f"{model.uri} fails on its own input example: {type(by_frame).__name__}: {by_frame}")


def input_schema(signature: Schema | None, estimator, uri: str) -> Schema:
    """The signature's columns; without a signature, the estimator's ``feature_names_in_`` as doubles."""
    if signature is not None:
        return signature
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        raise ModelRejected(f"{uri} has no signature and no feature names: log it with a signature")
    return Schema([Column(str(n), "double") for n in names])


def probe_rows(records: list | None, schema: Schema) -> list[list]:
    """Probe rows: the logged input example's first records in signature order, else one row of zeros."""
    if records:
        try:
            return [schema.row(record, schema.lenient, False, "input example") for record in records[:5]]
        except InputError:
            pass
    return [[0 if c.kind != "string" else "" for c in schema.columns]]
