"""What the DevOps stand-in tests share: a tiny git repository that carries the project's bundle code and
``build_spec.yaml``, the Distribution registry (Debian's ``docker-registry``) as OCIR, and a stand-in with build
pipelines and a trigger registered over them."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from adapters.oci.standin import put_secret, register_log
from adapters.oci.standin.devops_store import register_pipeline, register_trigger
from adapters.oci.standin.testing import REPO, StandInProcess
from harness.infra.processes import free_port

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaadevops"
PROJECT = "ocid1.devopsproject.oc1..aaaaaaaalastmile"
PIPELINE = "ocid1.devopsbuildpipeline.oc1..aaaaaaaabundle"
SPEC_PIPELINES = {name: f"ocid1.devopsbuildpipeline.oc1..aaaaaaaa{name}" for name in ("fail", "slow", "hang", "secret")}
TRIGGER = "ocid1.devopstrigger.oc1..aaaaaaaatraining"
GROUP = "ocid1.loggroup.oc1..aaaaaaaadevops"
LOG = "ocid1.log.oc1..aaaaaaaabuilds"
VAULT = "ocid1.vault.oc1..lastmile"  # the vault whose registry-password OCID build_spec.yaml names
REGISTRY_USER, REGISTRY_PASSWORD = "lastmile/builder", "registry-s3cret-value"
WEBHOOK_SECRET = "webhook-shared-secret"
SECRET_SPEC_VALUE = "very-secret-vault-value"
BUNDLE_CODE = ("harness/__init__.py", "harness/domain", "harness/infra/__init__.py", "harness/infra/bundle.py",
               "adapters/__init__.py", "adapters/shared", "build_spec.yaml")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def spec(steps: list[dict], **env) -> str:
    return yaml.safe_dump({"version": 0.1, "component": "build", "timeoutInSeconds": 60, "shell": "bash",
                           "env": env, "steps": steps})


def make_repo(root: Path, secret_ocid: str) -> Path:
    """A repository with the project's bundle code, a tiny ``training/`` and the test build specs."""
    repo = root / "repo"
    for item in BUNDLE_CODE:
        source, dest = REPO / item, repo / item
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, dest)
    (repo / "training").mkdir()
    (repo / "training" / "__main__.py").write_text("print('training')\n")
    (repo / "training" / "model.py").write_text("WEIGHTS = [1, 2, 3]\n")
    (repo / "specs").mkdir()
    (repo / "specs" / "fail.yaml").write_text(spec([
        {"type": "Command", "name": "ok", "command": "echo before the failure"},
        {"type": "Command", "name": "breaks", "command": "echo 'compiler says no' >&2\nexit 3",
         "onFailure": [{"type": "Command", "command": "echo cleaning up", "timeoutInSeconds": 10}]}]))
    (repo / "specs" / "slow.yaml").write_text(spec([
        {"type": "Command", "name": "sleeps", "command": "echo sleeping\nsleep 30", "timeoutInSeconds": 1}]))
    (repo / "specs" / "hang.yaml").write_text(spec([
        {"type": "Command", "name": "waits", "command": "echo waiting\nsleep 60", "timeoutInSeconds": 90}]))
    (repo / "specs" / "secret.yaml").write_text(spec(
        [{"type": "Command", "name": "uses the secret",
          "command": 'echo "token is $TOKEN"\nexport LEAK="$TOKEN" GREETING="hello $WHO"'}],
        variables={"WHO": "world"}, vaultVariables={"TOKEN": secret_ocid}, exportedVariables=["LEAK", "GREETING"]))
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "tiny project")
    return repo


class Registry:
    """``docker-registry`` on a free port with one htpasswd user; stopped by its pid."""

    def __init__(self, home: Path):
        if not shutil.which("docker-registry"):
            pytest.skip("docker-registry is not on PATH (apt-get install docker-registry)")
        self.port, self.home = free_port(), home
        hashed = bcrypt.hashpw(REGISTRY_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (home / "htpasswd").write_text(f"{REGISTRY_USER}:{hashed}\n")
        (home / "config.yml").write_text(yaml.safe_dump({
            "version": 0.1, "log": {"level": "error"}, "storage": {"filesystem": {"rootdirectory": str(home / "d")}},
            "http": {"addr": f"127.0.0.1:{self.port}"},
            "auth": {"htpasswd": {"realm": "test", "path": str(home / "htpasswd")}}}))
        self.url = f"http://127.0.0.1:{self.port}"
        log = (home / "registry.log").open("wb")
        self.process = subprocess.Popen(["docker-registry", "serve", str(home / "config.yml")], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v2/", timeout=1).status_code == 401:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError("docker-registry did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class DevOpsWorld:
    standin: StandInProcess
    registry: Registry
    repo: Path
    secret_ocid: str


def devops_world(tmp_path_factory):
    """A generator for a module's ``world`` fixture: the registry, the repository and the stand-in."""
    root = tmp_path_factory.mktemp("devops")
    registry = Registry(root)
    state = root / "state"
    state.mkdir()
    put_secret(state, "registry-password", VAULT, REGISTRY_PASSWORD)
    webhook = put_secret(state, "github-webhook", VAULT, WEBHOOK_SECRET)["id"]
    secret_ocid = put_secret(state, "spec-secret", VAULT, SECRET_SPEC_VALUE)["id"]
    register_log(state, LOG, GROUP, COMPARTMENT)
    repo = make_repo(root, secret_ocid)
    parameters = {"OCIR_REGISTRY": registry.url, "OCIR_USERNAME": REGISTRY_USER, "BUILD_TARGET": "training"}
    register_pipeline(state, PIPELINE, PROJECT, COMPARTMENT, repo, "https://github.com/example/tiny.git", LOG,
                      parameters)
    for name, pipeline in SPEC_PIPELINES.items():
        register_pipeline(state, pipeline, PROJECT, COMPARTMENT, repo, "", LOG, build_spec=f"specs/{name}.yaml")
    register_trigger(state, TRIGGER, PIPELINE, webhook, include=["training/**"], exclude=["**/*.md"],
                     arguments={"BUILD_TARGET": "training"})
    try:
        with StandInProcess(free_port(), state) as standin:
            yield DevOpsWorld(standin, registry, repo, secret_ocid)
    finally:
        registry.stop()
