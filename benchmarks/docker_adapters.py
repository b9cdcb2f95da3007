"""The containers profile's build and training-job adapters against the local profile's, through the real adapters.

- ImageBuilder ``docker`` on training/ and serving/: a cold build (no layer cache, no earlier image) and its push,
  a rebuild after a one-line source change (Docker's layer cache, the new layer pushed), an unchanged context
  (neither built nor pushed); the ``bundle`` builder on the same contexts for comparison.
- JobRunner ``container`` against ``subprocess``: from ``submit()`` to the job's first line of output (a tiny job),
  and to the end of ``python -m training.train --help`` (the training image's imports), median of ``--runs``.

    .venv/bin/python benchmarks/docker_adapters.py [--runs 5] [--skip-cold]

Needs a Docker engine, the base image the builder chooses and ``docker-registry``; starts a registry stand-in on a
free port in a temporary directory. Every image and container it makes is removed at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.containers.builder import DockerImageBuilder, RegistryLogin  # noqa: E402
from adapters.containers.engine import STATE_DIR_LABEL, docker_client, state_dir_label  # noqa: E402
from adapters.containers.jobs import ContainerJobRunner  # noqa: E402
from adapters.local.bundle_builder import BundleImageBuilder  # noqa: E402
from adapters.local.jobs import SubprocessJobRunner  # noqa: E402
from adapters.local.secrets import FileSecretStore  # noqa: E402
from adapters.local.standins import RegistryStandIn  # noqa: E402
from adapters.shared.distribution import DistributionRegistry  # noqa: E402
from harness.domain.records import JobSpec, JobState, SecretRef  # noqa: E402
from harness.infra.processes import free_port  # noqa: E402
from harness.infra.supervisor import Supervisor  # noqa: E402

PASSWORD = "secret:registry-password"
JOB = 'import sys, time\nprint("started", flush=True)\n'
JOB_DOCKERFILE = """ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY benchjob /app/benchjob
USER 10001
ENTRYPOINT ["python", "-m", "benchjob.main"]
"""


def timed(fn, *args):
    started = time.monotonic()
    value = fn(*args)
    return value, time.monotonic() - started


def logged_seconds(builder: DockerImageBuilder, run_id: str, what: str) -> float | None:
    """The seconds the build log says a step took (``built ... in X s``, ``pushed ... in X s``)."""
    match = re.search(rf"\[lastmile\] {what} \S+ in ([0-9.]+) s", builder.log_tail(run_id, 10_000))
    return float(match.group(1)) if match else None


def builds(root: Path, registry, login: RegistryLogin, state: Path, cold: bool) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    print(f"\n== ImageBuilder docker (repository prefix {prefix}) vs bundle")
    print(f"{'image':10} {'case':34} {'total s':>8} {'build s':>8} {'push s':>8}")
    for name in ("training", "serving"):
        context = root / name
        shutil.copytree(REPO / name, context, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if cold:
            builder = DockerImageBuilder(registry, login, state, f"{prefix}-cold", no_cache=True)
            ref, seconds = timed(builder.build, name, context)
            print(f"{name:10} {'cold (no layer cache), pushed':34} {seconds:8.1f} "
                  f"{logged_seconds(builder, ref.run_id, 'built'):8.1f} {logged_seconds(builder, ref.run_id, 'pushed'):8.1f}")
        builder = DockerImageBuilder(registry, login, state, prefix)
        ref, seconds = timed(builder.build, name, context)
        print(f"{name:10} {'first push here (cache or reuse)':34} {seconds:8.1f} "
              f"{logged_seconds(builder, ref.run_id, 'built') or 0:8.1f} {logged_seconds(builder, ref.run_id, 'pushed'):8.1f}")
        (context / "__init__.py").write_text((context / "__init__.py").read_text() + f"\n# {uuid.uuid4().hex}\n")
        ref, seconds = timed(builder.build, name, context)
        print(f"{name:10} {'one-line change (layer cache)':34} {seconds:8.1f} "
              f"{logged_seconds(builder, ref.run_id, 'built'):8.1f} {logged_seconds(builder, ref.run_id, 'pushed'):8.1f}")
        again, seconds = timed(builder.build, name, context)
        assert not again.pushed
        print(f"{name:10} {'unchanged (neither built nor pushed)':34} {seconds:8.2f}")
        bundles = BundleImageBuilder(registry, prefix + "-bundle")
        _, seconds = timed(bundles.build, name, context)
        print(f"{name:10} {'bundle builder, pushed':34} {seconds:8.2f}")


def job_starts(root: Path, registry, login: RegistryLogin, state: Path, runs: int) -> None:
    context = root / "benchjob-image"
    (context / "benchjob").mkdir(parents=True)
    (context / "benchjob" / "__init__.py").write_text("")
    (context / "benchjob" / "main.py").write_text(JOB)
    (context / "Dockerfile").write_text(JOB_DOCKERFILE)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    images = DockerImageBuilder(registry, login, state, prefix)
    tiny_image = images.build("benchjob", context).artifact
    training_image = images.build("training", REPO / "training").artifact
    from harness.infra.bundle import build_bundle

    tiny_bundle = build_bundle(registry, "benchjob", context / "benchjob", f"{prefix}/benchjob-bundle",
                               entrypoint="benchjob.main").artifact
    training_bundle = BundleImageBuilder(registry, prefix + "-bundle").build("training", REPO / "training").artifact
    runners = {"container": ContainerJobRunner(state / "container", login, poll_s=0.02, grace_s=2),
               "subprocess": SubprocessJobRunner(registry, state / "subprocess", poll_s=0.02, grace_s=2)}
    first_line: dict[str, list[float]] = {k: [] for k in runners}
    help_done: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(runs):
        for kind, runner in runners.items():
            artifact = tiny_image if kind == "container" else tiny_bundle
            started = time.monotonic()
            run = runner.submit(JobSpec("bench", artifact, timeout_s=60))
            while "started" not in runner.log_tail(run.run_id, 5):
                time.sleep(0.01)
            first_line[kind].append(time.monotonic() - started)
            assert runner.wait(run.run_id, 60).state is JobState.SUCCEEDED
            artifact = training_image if kind == "container" else training_bundle
            started = time.monotonic()
            run = runner.wait(runner.submit(JobSpec("help", artifact, ("--help",), timeout_s=120)).run_id, 120)
            assert run.state is JobState.SUCCEEDED, runner.log_tail(run.run_id, 20)
            help_done[kind].append(time.monotonic() - started)
    print(f"\n== JobRunner: median of {runs} runs (seconds)")
    print(f"{'runner':12} {'submit -> first line':>22} {'training --help, submit -> end':>32}")
    for kind in runners:
        print(f"{kind:12} {statistics.median(first_line[kind]):22.2f} {statistics.median(help_done[kind]):32.2f}")
    ratio = statistics.median(first_line["container"]) / statistics.median(first_line["subprocess"])
    print(f"container / subprocess, first line: {ratio:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true", help="no cold builds (each installs every requirement)")
    args = parser.parse_args()
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as tmp:
        root = Path(tmp)
        state = root / ".lastmile"
        secrets = FileSecretStore(state / "secrets.json")
        supervisor = Supervisor(state)
        [status] = supervisor.up([RegistryStandIn(free_port(), state, "lastmile", PASSWORD, secrets)])
        password = secrets.resolve(SecretRef.parse(PASSWORD))
        registry = DistributionRegistry(status.url, "lastmile", password, PASSWORD)
        login = RegistryLogin("lastmile", password, PASSWORD)
        try:
            builds(root, registry, login, state, cold=not args.skip_cold)
            job_starts(root, registry, login, state, args.runs)
        finally:
            for label in (state_dir_label(state / "container"),):
                for container in client.containers.list(all=True, filters={"label": f"{STATE_DIR_LABEL}={label}"}):
                    container.remove(force=True)
            for image in client.images.list():
                for name in [*image.tags, *(image.attrs.get("RepoDigests") or ())]:
                    if name.startswith(f"{registry.registry}/"):
                        try:
                            client.images.remove(name)
                        except Exception:  # gone with an earlier name of the same image
                            pass
            supervisor.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
