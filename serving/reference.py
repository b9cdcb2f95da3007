"""The reference self-check: a loaded version must answer the registry's recorded rows as the registry recorded.

``LASTMILE_SERVING_REFERENCE`` carries rows (``dataframe_records`` form) and the predictions recorded for this
version. They go through the parsing ``/invocations`` applies to ``{"dataframe_records": rows}`` and through the
model; any difference in the JSON answer (a library upgrade in the image, the wrong file mounted) fails the load.
"""

from __future__ import annotations

import json

from serving.protocol import JSON, parse_invocations
from serving.schema import InputError
from serving.served import ModelRejected, ServedModel
from serving.settings import Reference

_PREVIEW_CHARS = 300


def check_reference(model: ServedModel, reference: Reference, reject_unknown_columns: bool = False) -> None:
    """Raise :class:`ModelRejected` unless ``model`` predicts ``reference.rows`` as ``reference.predictions``."""
    body = json.dumps({"dataframe_records": reference.rows}).encode()
    try:
        rows = parse_invocations(body, JSON, model.schema, reject_unknown_columns)
        got = json.loads(json.dumps(model.predict(rows)))
    except InputError as exc:
        raise ModelRejected(f"{model.uri} does not reproduce the reference predictions: the reference rows "
                             f"fail: {exc.message}") from None
    expected = reference.predictions
    if got != expected:
        differing = [i for i, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e]
        where = f"rows {_preview(differing, 80)} differ" if differing else f"{len(got)} answers for {len(expected)}"
        raise ModelRejected(f"{model.uri} does not reproduce the reference predictions ({where}): "
                             f"got {_preview(got)}, expected {_preview(expected)}")


def _preview(values: list, limit: int = _PREVIEW_CHARS) -> str:
    text = json.dumps(values)
    return text if len(text) <= limit else text[:limit - 3] + "..."
