"""What the Data Science tests share: a Distribution registry standing in for OCIR with a tiny job bundle in it, and
the OCI API stand-in running that bundle's job runs, its minute shortened to a second."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.local.secrets import FileSecretStore
from adapters.local.standins import RegistryStandIn
from adapters.oci.standin import put_secret, register_log
from adapters.oci.standin.testing import StandInProcess
from adapters.shared.distribution import DistributionRegistry
from harness.domain.records import ArtifactRef, SecretRef
from harness.infra.bundle import build_bundle
from harness.infra.processes import free_port
from harness.infra.supervisor import Supervisor

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaadstests"
PROJECT = "ocid1.datascienceproject.oc1.eu-frankfurt-1.aaaaaaaadstests"
GROUP = "ocid1.loggroup.oc1.eu-frankfurt-1.aaaaaaaads"
LOG = "ocid1.log.oc1.eu-frankfurt-1.aaaaaaaadsjobs"
VAULT = "ocid1.vault.oc1..aaaaaaaads"
REGISTRY_USER, PASSWORD_REF = "lastmile/ci", "secret:registry-password"
SECRET_VALUE = "s3cr3t-env-value-never-stored"
HELLO, GOING_DOWN = "hello from the job", "going down"

TINY_JOB = f'''
import hashlib, os, sys, time
mode = sys.argv[1] if len(sys.argv) > 1 else "succeed"
if mode == "succeed":
    print({HELLO!r})
elif mode == "fail":
    print({GOING_DOWN!r}, file=sys.stderr)
    sys.exit(3)
elif mode == "hang":
    print("hanging", flush=True)
    time.sleep(60)
elif mode == "lines":
    for i in range(1, 31):
        print(f"line {{i}}")
elif mode == "env":
    seen = hashlib.sha256(os.environ.get("SECRET_TOKEN", "").encode()).hexdigest()
    print("secret seen:", seen == {hashlib.sha256(SECRET_VALUE.encode()).hexdigest()!r}, "run:", os.environ.get("JOB_RUN_OCID"))
elif mode == "pid":
    with open(sys.argv[2], "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)
'''


@dataclass
class Stack:
    standin: StandInProcess
    artifact: ArtifactRef
    jobs_dir: Path  # the lastmile state dir whose jobs/ holds the runs

    def image(self) -> str:
        return str(self.artifact)


def stack(tmp: Path) -> Iterator[Stack]:
    """The registry with the bundle, and the OCI stand-in (runs under ``tmp/lastmile/jobs``)."""
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not on PATH: `make test` installs it (apt-get install docker-registry)")
    secrets = FileSecretStore(tmp / "secrets.json")
    supervisor = Supervisor(tmp / "registry")
    [running] = supervisor.up([RegistryStandIn(free_port(), tmp / "registry", REGISTRY_USER, PASSWORD_REF, secrets)])
    try:
        password = secrets.resolve(SecretRef.parse(PASSWORD_REF))
        registry = DistributionRegistry(running.url, REGISTRY_USER, password)
        package = tmp / "src" / "tinyjob"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "main.py").write_text(TINY_JOB)
        artifact = build_bundle(registry, "tinyjob", package, "lastmile/tinyjob", entrypoint="tinyjob.main").artifact
        state, jobs_dir = tmp / "oci", tmp / "lastmile"
        put_secret(state, "registry-password", VAULT, password.reveal())
        register_log(state, LOG, GROUP, COMPARTMENT)
        args = ["--jobs-dir", str(jobs_dir), "--registry-username", REGISTRY_USER,
                "--registry-password-secret", "registry-password", "--minute-seconds", "1"]
        with StandInProcess(free_port(), state, args=args) as standin:
            yield Stack(standin, artifact, jobs_dir)
    finally:
        supervisor.down()
