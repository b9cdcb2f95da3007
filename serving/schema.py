"""The model's input columns and how one JSON or CSV value becomes the value the model receives.

Two readings of a value exist. *Lenient* is MLflow's scoring server: ``"5.1"`` and ``true`` are accepted in a
double column, ``null`` becomes NaN. *Strict* is ``/predict``'s typed contract: a double column takes numbers
only, a required column takes no null. Either way a value that cannot be read raises :class:`InputError`
naming the column (and the row when there are several).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FLOAT_KINDS = frozenset({"double", "float"})
INT_KINDS = frozenset({"long", "integer"})
NUMERIC_KINDS = FLOAT_KINDS | INT_KINDS | {"boolean"}
MLFLOW_DATA_TYPES = NUMERIC_KINDS | {"string", "binary", "datetime"}
"""The names of ``mlflow.types.DataType``; array, object and map columns are kept as ``object``."""
_NAMED_COLUMNS_ONLY = "the model signature must have named columns (tensor signatures are not supported)"
_NAN = float("nan")


class InputError(Exception):
    """A request the client must fix; ``status`` is the HTTP status, ``error_code`` MLflow's error name."""

    def __init__(self, message: str, status: int = 400, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True)
class Column:
    """One named input of the model signature; ``kind`` is MLflow's data type name (``double``, ``long``...)."""

    name: str
    kind: str
    required: bool = True


Converter = Callable[[Any], Any]


class Schema:
    """The ordered input columns, with a lenient and a strict converter per column."""

    def __init__(self, columns: Sequence[Column]):
        if not columns:
            raise ValueError("a schema needs at least one column")
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self.positions = {name: i for i, name in enumerate(self.names)}
        self.numeric = all(c.kind in NUMERIC_KINDS for c in self.columns)
        self.floats_only = all(c.kind in FLOAT_KINDS for c in self.columns)
        """Every column is a float: a JSON number needs no conversion (see :func:`numbers_only`)."""
        self.lenient = tuple(_converter(c, strict=False) for c in self.columns)
        self.strict = tuple(_converter(c, strict=True) for c in self.columns)

    @classmethod
    def from_mlflow(cls, inputs) -> Schema:
        """From an ``mlflow.types.Schema`` of named columns (tensor signatures are not supported)."""
        if inputs is None or inputs.is_tensor_spec() or not inputs.has_input_names():
            raise ValueError(_NAMED_COLUMNS_ONLY)
        return cls([Column(spec.name, getattr(spec.type, "name", "object"), spec.required) for spec in inputs.inputs])

    @classmethod
    def from_mlflow_json(cls, text: str) -> Schema:
        """From ``signature.inputs`` of an ``MLmodel`` file, a JSON list of ``{"type", "name", "required"}``."""
        specs = json.loads(text)
        named = type(specs) is list and all(
            type(spec) is dict and type(spec.get("name")) is str and spec.get("type") != "tensor" for spec in specs)
        if not named:
            raise ValueError(_NAMED_COLUMNS_ONLY)
        return cls([Column(spec["name"], spec["type"] if spec.get("type") in MLFLOW_DATA_TYPES else "object",
                           spec.get("required", True) is not False) for spec in specs])

    def row(self, record: Mapping, converters: Sequence[Converter], reject_unknown: bool, where: str) -> list:
        """The values of one ``{column: value}`` record in signature order."""
        if type(record) is not dict:
            raise InputError(f"{where} must be an object of column: value, got {_type_name(record)}")
        try:
            row = [convert(record[name]) for name, convert in zip(self.names, converters, strict=False)]
        except Exception:
            row = [self._convert(record, name, convert, where)
                   for name, convert in zip(self.names, converters, strict=False)]
        if reject_unknown:
            self.check_known(record, where)
        return row

    def row_from_values(self, values: Sequence, positions: Sequence[int | None], converters: Sequence[Converter],
                        where: str) -> list:
        """The values of one positional row (CSV, ``dataframe_split``); ``positions[i]`` locates column i."""
        row = []
        for column, position, convert in zip(self.columns, positions, converters, strict=False):
            value = None if position is None else values[position]
            try:
                row.append(convert(value))
            except Exception as exc:
                raise InputError(f"{where}, column {column.name!r}: {_reason(exc, value)}") from None
        return row

    def positions_of(self, given: Sequence[str], reject_unknown: bool, where: str) -> list[int | None]:
        """Where each signature column sits among ``given`` column names; None for an absent optional column."""
        index = {name: i for i, name in enumerate(given)}
        if len(index) != len(given):
            duplicates = sorted({n for n in given if list(given).count(n) > 1})
            raise InputError(f"{where}: duplicate column(s) {', '.join(map(repr, duplicates))}")
        missing = [c.name for c in self.columns if c.required and c.name not in index]
        if missing:
            raise InputError(f"{where}: missing required column(s) {', '.join(map(repr, missing))}")
        if reject_unknown:
            self.check_known(index, where)
        return [index.get(name) for name in self.names]

    def check_known(self, names, where: str) -> None:
        unknown = [str(n) for n in names if n not in self.positions]
        if unknown:
            raise InputError(f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; "
                             f"the model takes {', '.join(map(repr, self.names))}")

    def _convert(self, record: Mapping, name: str, convert: Converter, where: str):
        if name not in record:
            column = self.columns[self.positions[name]]
            if column.required:
                raise InputError(f"{where}: missing required column {name!r}")
            return convert(None)
        value = record[name]
        try:
            return convert(value)
        except Exception as exc:
            raise InputError(f"{where}, column {name!r}: {_reason(exc, value)}") from None


def numbers_only(rows: list, width: int) -> bool:
    """Whether ``rows`` is a list of lists of ``width`` JSON numbers (ints or floats, not booleans).

    Such rows are what the lenient float converters would return (up to int/float, which the model's float array
    erases), so a float-only schema can take them as they are: a type test per value instead of a call.
    """
    for values in rows:
        if type(values) is not list or len(values) != width:
            return False
        for value in values:
            kind = type(value)
            if kind is not float and kind is not int:
                return False
    return True


def _converter(column: Column, strict: bool) -> Converter:
    if column.kind in FLOAT_KINDS:
        return _strict_float(column.required) if strict else _lenient_float(column.required)
    if column.kind in INT_KINDS:
        return _int(column.required, strict)
    if column.kind == "boolean":
        return _bool(column.required, strict)
    if column.kind == "string":
        return _string(column.required)
    return _passthrough(column.required)


def _lenient_float(required: bool) -> Converter:
    def convert(value):
        kind = type(value)
        if kind is float or kind is int or kind is bool:
            return float(value)
        if kind is str:
            try:
                return float(value)
            except ValueError:
                raise ValueError("expected a number") from None
        if value is None:
            return _NAN
        raise TypeError("expected a number")
    return convert


def _strict_float(required: bool) -> Converter:
    def convert(value):
        kind = type(value)
        if kind is float:
            if math.isfinite(value):
                return value
            raise ValueError("expected a finite number")
        if kind is int:
            return float(value)
        if value is None and not required:
            return _NAN
        raise TypeError("expected a number")
    return convert


def _int(required: bool, strict: bool) -> Converter:
    def convert(value):
        kind = type(value)
        if kind is int:
            return value
        if kind is float and value.is_integer():
            return int(value)
        if not strict and (kind is bool or kind is str):
            try:
                number = float(value)
            except ValueError:
                number = _NAN
            if number.is_integer():
                return int(number)
        if value is None and not required:
            return _NAN
        raise TypeError("expected an integer")
    return convert


def _bool(required: bool, strict: bool) -> Converter:
    lenient_values = {"true": True, "false": False, "1": True, "0": False, 1: True, 0: False}

    def convert(value):
        if type(value) is bool:
            return value
        if not strict and type(value) in (str, int):
            key = value.strip().lower() if type(value) is str else value
            if key in lenient_values:
                return lenient_values[key]
        if value is None and not required:
            return _NAN
        raise TypeError("expected true or false")
    return convert


def _string(required: bool) -> Converter:
    def convert(value):
        if type(value) is str or (value is None and not required):
            return value
        raise TypeError("expected a string")
    return convert


def _passthrough(required: bool) -> Converter:
    def convert(value):
        if value is None and required:
            raise TypeError("a value is required")
        return value
    return convert


def _reason(exc: Exception, value) -> str:
    if value is None:
        return "a value is required, got null"
    return f"{exc}, got {_type_name(value)} {_preview(value)}"


def _type_name(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


def _preview(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
