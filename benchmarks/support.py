"""What the serving benchmarks share: a registered iris model in a throwaway MLflow, and servers run as process groups.

``python benchmarks/support.py register ROOT [--download DIR]`` trains iris (StandardScaler + DecisionTreeClassifier,
depth 3), logs it with skops and pinned pip requirements to ``sqlite:///ROOT/mlflow.db`` as version 1 of ``iris``,
optionally downloads that version to DIR with the ``version.json`` a deployer writes, and prints a JSON summary
(the columns, one row, a batch of 100 rows drawn from iris).
The benchmarks call it through :func:`register_iris` so that their own process never imports MLflow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_NAME = "iris"
sys.path.insert(0, str(REPO))
from harness.infra.processes import free_port, stop_group  # noqa: E402  the one process-group helper

__all__ = ["free_port"]


def python_env(root: Path) -> dict[str, str]:
    """The environment for every child: this interpreter's tools first on PATH, the repository importable."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true",
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def register_iris(root: Path, download: Path | None = None, timeout: float = 300.0) -> dict:
    """Register the model in ``root`` from a child process; the summary it printed."""
    command = [sys.executable, __file__, "register", str(root)] + (["--download", str(download)] if download else [])
    done = subprocess.run(command, cwd=root, env=python_env(root), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"registering the iris model failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def answers(url: str, body: bytes | None) -> bool:
    """Whether ``url`` answers 200 to a POST of ``body`` (a GET without one) within 2 s."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """A server started in its own process group, so that stopping it also stops whatever it spawned.

    Use it as a context manager: the group is stopped on leaving the block, whatever ended it.
    """

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path, log: Path, url: str):
        self.name, self.command, self.env, self.cwd, self.log, self.url = name, command, env, cwd, log, url
        self.process: subprocess.Popen | None = None
        self.stopped = False

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait_until_answering(self, body: bytes | None, timeout: float) -> float:
        """Seconds until ``self.url`` answers 200 (to a POST of ``body``, or a GET without one); raises with the
        log's tail if the server dies or the time runs out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}")
            if answers(self.url, body):
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer {self.url} within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever of it is left after ``grace`` seconds."""
        if self.process is None or self.stopped:
            return
        self.stopped = True
        stop_group(self.process.pid, grace, reap=self.process.poll)
        self.process.wait(5)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server's main process has used so far; None where /proc is missing."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def run_benchmark(args, prefix: str, measure: Callable[[object, Path], dict], render: Callable[[dict], str],
                  report: Callable[[str], None]) -> int:
    """A benchmark's ``main``: ``measure(args, root)`` in a fresh temporary directory (removed unless
    ``args.keep``), then its table (or JSON with ``args.json``). Exit 130 on Ctrl-C, 1 when it failed."""
    args.load_average_at_start = [round(x, 2) for x in os.getloadavg()]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        summary = measure(args, root)
    except KeyboardInterrupt:
        report("interrupted; the servers are stopped")
        return 130
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
        report(f"benchmark failed: {exc}")
        return 1
    finally:
        if getattr(args, "keep", False):
            report(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(summary) if args.json else render(summary))
    return 0


def _register(root: Path, download: Path | None) -> dict:
    import mlflow
    import sklearn
    import skops
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0)).fit(features, target)
    mlflow.set_experiment("serving-benchmark")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(features, model.predict(features)),
            input_example=features.head(3), registered_model_name=MODEL_NAME,
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"])
    version = str(info.registered_model_version)
    summary = {"name": MODEL_NAME, "version": version, "columns": list(features.columns),
               "row": features.iloc[0].tolist(), "batch": features.sample(100, random_state=0).to_numpy().tolist(),
               "tracking_uri": mlflow.get_tracking_uri()}
    if download is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from adapters.local.deployer.client import download_model_version  # what the deployer does
        from harness.domain.records import ModelVersion

        record = MlflowClient().get_model_version(MODEL_NAME, version)
        model = ModelVersion(record.name, str(record.version), record.run_id, record.source, dict(record.tags or {}))
        download.mkdir(parents=True, exist_ok=True)
        summary["model_dir"] = str(download_model_version(mlflow.get_tracking_uri(), model, download))
    return summary


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Register the benchmark's iris model in sqlite:///ROOT/mlflow.db.")
    parser.add_argument("command", choices=["register"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--download", type=Path, help="also download version 1 here, with version.json")
    arguments = parser.parse_args()
    print(json.dumps(_register(arguments.root.resolve(), arguments.download)))
