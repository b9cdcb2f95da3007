"""Test doubles shipped with the stand-in: the stand-in as a child process, prepared with an API key (and its SDK
config file), a customer secret key, and a vault and log to put secrets and entries in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.infra.processes import stop_process

from .keys import ApiKey, CustomerSecretKey, ensure_api_key, ensure_customer_secret_key
from .standin import is_ready

REPO = Path(__file__).resolve().parents[3]


class StandInProcess:
    """``python -m adapters.oci.standin`` on 127.0.0.1:``port`` with ``state``, in its own session; stopped by its
    pid (SIGTERM, then SIGKILL). ``api_key`` and ``s3_key`` are generated into ``state/client`` before it starts."""

    def __init__(self, port: int, state: Path, log: Path | None = None, env: dict[str, str] | None = None,
                 startup_timeout: float = 20.0, args: list[str] | tuple[str, ...] = ()):
        """``args``: more options of the server (``--jobs-dir``, ``--minute-seconds``, ...)."""
        self.port, self.state, self.startup_timeout, self.args = port, state, startup_timeout, list(args)
        self.log = log or state / "standin.log"
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.api_key: ApiKey = ensure_api_key(state / "client", state)
        self.s3_key: CustomerSecretKey = ensure_customer_secret_key(state)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StandInProcess:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self) -> None:
        command = [sys.executable, "-m", "adapters.oci.standin", "--host", "127.0.0.1", "--port", str(self.port),
                   "--state", str(self.state), *self.args]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            env={**os.environ, **self.env})
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OCI stand-in exited with {self.process.returncode}\n{self.log_tail()}")
            if is_ready(self.url):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the OCI stand-in did not answer within {self.startup_timeout:.0f} s\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> int | None:
        return stop_process(self.process, grace)

    def sdk_config(self) -> dict:
        """The SDK config of :attr:`api_key` (``oci.config.from_file``), validated."""
        import oci

        config = oci.config.from_file(str(self.api_key.config_file), self.api_key.profile)
        oci.config.validate_config(config)
        return config

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


OCI_CLI = REPO / "scripts" / "oci-cli.sh"
PYPI_UNREACHABLE = 3  # scripts/oci-cli.sh's exit code when oci-cli cannot be installed for want of PyPI


class CliUnavailable(RuntimeError):
    """``scripts/oci-cli.sh`` could not install the CLI because PyPI cannot be reached."""


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def service_error(self) -> dict:
        """The ``ServiceError:`` document the CLI prints on stderr for a refused request."""
        _, _, document = self.stderr.partition("ServiceError:")
        return json.loads(document[document.index("{"):document.rindex("}") + 1])


def ensure_oci_cli(timeout: float = 600.0) -> str:
    """The real CLI's version, installing it on first use; :class:`CliUnavailable` when PyPI cannot be reached."""
    done = subprocess.run([str(OCI_CLI), "--version"], capture_output=True, text=True, timeout=timeout)
    if done.returncode == PYPI_UNREACHABLE:
        raise CliUnavailable(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0:
        raise RuntimeError(f"scripts/oci-cli.sh --version exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def oci_cli(standin: StandInProcess, *args: str, config: Path | None = None, endpoint: str | None = None,
            timeout: float = 120.0) -> CliResult:
    """``oci ARGS`` with the stand-in's config file and ``--endpoint`` its URL (retries off, so a refusal is
    reported at once)."""
    command = [str(OCI_CLI), "--config-file", str(config or standin.api_key.config_file),
               "--endpoint", endpoint or standin.url, "--no-retry", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return CliResult(done.returncode, done.stdout, done.stderr)
