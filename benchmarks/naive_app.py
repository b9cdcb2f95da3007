"""The model server a user writes first: FastAPI, a pandas DataFrame, ``model.predict``, one uvicorn worker.

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db python benchmarks/naive_app.py models:/iris/1 --port 8001

A contender of ``benchmarks/serving_vs_mlflow.py``, written as the FastAPI and MLflow documentation lead one to
write it, not as a strawman: the scikit-learn flavor (a plain ``predict``, without pyfunc's schema enforcement,
which costs about 0.8 ms a call), an ``async`` endpoint (no thread hop), a pydantic model of MLflow's
``dataframe_split`` payload, and uvicorn's defaults (httptools and uvloop when installed; its access log on, a line
per request, one or two percent of this app's time). Only ``/invocations`` with ``dataframe_split``.
"""

from __future__ import annotations

import argparse

import mlflow.sklearn
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class DataframeSplit(BaseModel):
    columns: list[str]
    data: list[list[float]]


class Invocation(BaseModel):
    dataframe_split: DataframeSplit


def build_app(model) -> FastAPI:
    app = FastAPI()

    @app.post("/invocations")
    async def invocations(payload: Invocation) -> dict:
        frame = pd.DataFrame(payload.dataframe_split.data, columns=payload.dataframe_split.columns)
        return {"predictions": model.predict(frame).tolist()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_uri", help="models:/<name>/<version> in MLFLOW_TRACKING_URI's registry")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(build_app(mlflow.sklearn.load_model(args.model_uri)), host=args.host, port=args.port, workers=1)


if __name__ == "__main__":
    main()
