"""Why a stage failed, in one of six causes, with the evidence that shows it. Pure: no I/O.

:func:`diagnose` reads lastmile's own error types first (an :class:`~harness.domain.errors.UnreachableError` is a
network problem, an :class:`~harness.domain.errors.AuthError` a secret problem...), then, for errors that only
carry a message (a failed rollout, a failed observation), the message; :func:`diagnose_job` reads a failed
training job's end state, exit code and log tail. The evidence is the one thing a user should look at: the URL
that did not answer, the secret reference or user that was refused, the object whose content changed, the log
line of the failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.domain.errors import (
    AuthError,
    BuildFailed,
    CapacityError,
    ConfigError,
    IntegrityError,
    LastmileError,
    NotBuilt,
    NotFound,
    UnreachableError,
    UserError,
)
from harness.domain.records import JobRun, JobState

__all__ = [
    "CAUSES",
    "DATA_INTEGRITY",
    "ENDPOINT_CONFIGURATION",
    "INTERNAL",
    "MODEL_CODE",
    "NETWORK_REACHABILITY",
    "SECRET_ACCESS",
    "TIMEOUT_CAPACITY",
    "Context",
    "Diagnosis",
    "diagnose",
    "diagnose_job",
]

MODEL_CODE = "model code"
NETWORK_REACHABILITY = "network reachability"
SECRET_ACCESS = "secret access"
ENDPOINT_CONFIGURATION = "endpoint configuration"
DATA_INTEGRITY = "data integrity"
TIMEOUT_CAPACITY = "timeout/capacity"
CAUSES = (MODEL_CODE, NETWORK_REACHABILITY, SECRET_ACCESS, ENDPOINT_CONFIGURATION, DATA_INTEGRITY, TIMEOUT_CAPACITY)
"""The causes a failure is classified by."""
INTERNAL = "lastmile internal"
"""Not one of the causes: an exception lastmile did not raise on purpose (a bug of ours; it keeps its traceback)."""

EXIT_HASH_MISMATCH = 3
"""The training job's exit code when the dataset does not match its sha256 (training/train.py's contract)."""
EXIT_UNREACHABLE = 4
"""The training job's exit code when MLflow did not answer (training/train.py's contract)."""


@dataclass(frozen=True)
class Diagnosis:
    """The cause of a failure (one of :data:`CAUSES`, or :data:`INTERNAL`) and the evidence for it."""

    cause: str
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {"cause": self.cause, "evidence": self.evidence}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(str(data.get("cause", "")), str(data.get("evidence", "")))


@dataclass(frozen=True)
class Context:
    """What was known where the error surfaced: the stage, and for a job, its end state and log tail."""

    stage: str = ""
    job: JobRun | None = None
    log_tail: str = ""


def diagnose(exc: BaseException, context: Context = Context()) -> Diagnosis:
    """Classify ``exc``. An exception that carries its own ``diagnosis`` (made where the evidence was at hand,
    as the runner does for a failed job) keeps it."""
    carried = getattr(exc, "diagnosis", None)
    if isinstance(carried, Diagnosis):
        return carried
    if context.job is not None and context.job.state is not JobState.SUCCEEDED:
        return diagnose_job(context.job, context.log_tail)
    message = str(exc) or type(exc).__name__
    first = message.splitlines()[0]
    if isinstance(exc, CapacityError):
        return Diagnosis(TIMEOUT_CAPACITY, f"{exc.url}: {first}" if exc.url else first)
    if isinstance(exc, UnreachableError):
        return Diagnosis(NETWORK_REACHABILITY, exc.url or _first_url(message) or first)
    if isinstance(exc, AuthError):
        return Diagnosis(SECRET_ACCESS, _auth_evidence(exc, message))
    if isinstance(exc, (ConfigError, NotBuilt)):
        return Diagnosis(ENDPOINT_CONFIGURATION, exc.line())
    if isinstance(exc, IntegrityError):
        return Diagnosis(DATA_INTEGRITY, _first_uri(message) or first)
    if isinstance(exc, BuildFailed):
        return _by_text(message.splitlines()[1:]) or Diagnosis(MODEL_CODE, first)
    if isinstance(exc, NotFound):
        return _not_found(message)
    if isinstance(exc, LastmileError):
        found = _by_text(message.splitlines())
        if found is not None:
            return found
        fallback = MODEL_CODE if context.stage == "training" and not isinstance(exc, UserError) else \
            ENDPOINT_CONFIGURATION
        return Diagnosis(fallback, exc.line() if isinstance(exc, UserError) else first)
    return _builtin(exc, first)


def diagnose_job(job: JobRun, log_tail: str) -> Diagnosis:
    """Classify a job that did not succeed, by its state, exit code and the tail of its log."""
    lines = [line.strip() for line in log_tail.splitlines() if line.strip()]
    own = [line for line in lines if not line.startswith("[lastmile]")]
    if job.message.startswith("timed out after"):
        return Diagnosis(TIMEOUT_CAPACITY, job.message)
    if job.state is JobState.IN_PROGRESS:
        return Diagnosis(TIMEOUT_CAPACITY, f"job {job.run_id} still running when the wait ended")
    if job.state is JobState.CANCELED:
        return Diagnosis(TIMEOUT_CAPACITY, f"job {job.run_id} was canceled")
    # The local runner's messages, and OCI Data Science's lifecycle details (which quote the local ones' causes).
    if job.message.startswith("timed out after") or job.message == "Job run timed out":
        return Diagnosis(TIMEOUT_CAPACITY, job.message)
    if "ended by signal 9" in job.message:
        return Diagnosis(TIMEOUT_CAPACITY, f"{job.message} (SIGKILL: out of memory?)")
    if "could not pull" in job.message:
        return _by_text([job.message]) or Diagnosis(ENDPOINT_CONFIGURATION, job.message)
    if job.exit_code == EXIT_HASH_MISMATCH:
        return Diagnosis(DATA_INTEGRITY, _last(own, _INTEGRITY) or _last_training_line(own) or job.message)
    if job.exit_code == EXIT_UNREACHABLE:
        line = _last(own, _NETWORK) or _last_training_line(own) or job.message
        return Diagnosis(NETWORK_REACHABILITY, _first_url(line) or line)
    found = _by_text(own)
    if found is not None:
        return found
    return Diagnosis(MODEL_CODE, (own[-1] if own else "") or job.message or f"exit code {job.exit_code}")


# rules over message and log lines, in order of precedence ---------------------------------------------------
_TIMEOUT = re.compile(r"timed out after [\d.]+ ?s|not ready within [\d.]+ ?s|within [\d.]+ ?s$")
_CAPACITY = re.compile(r"\((429|5\d\d)[:)]|TooManyRequests|SlowDown|kept refusing|after \d+ retries$")
_INTEGRITY = re.compile(r"hash mismatch|does not match its (recorded )?(sha256|digest|descriptor)|"
                        r"content does not match|not the recorded [0-9a-f]|differ from the digests recorded|"
                        r"is not among the recorded files|is missing \(recorded sha256")
_NETWORK = re.compile(r"did not answer|Connection refused|Failed to establish a new connection|"
                      r"Max retries exceeded|EndpointConnectionError|Could not connect to the endpoint|"
                      r"ConnectionError|ConnectError|ConnectTimeout|Name or service not known|"
                      r"stand-ins are not up")
_AUTH = re.compile(r"error code (401|403)\b|\((401|403)\)|\b(401|403) (Unauthorized|Forbidden)|Unauthorized|"
                   r"Forbidden|refused the (credentials|token)|"
                   r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|PERMISSION_DENIED|UNAUTHENTICATED|"
                   r"not authenticated")
_DATA = re.compile(r"cannot read dataset|is not a CSV file|needs feature columns|NoSuchKey|: not found")
_MODEL = re.compile(r"does not reproduce|cannot load|could not load|exit code 3\b|predicted .* where model version|"
                    r"no lastmile\.reference tag|wrote no result")
_ENDPOINT = re.compile(r"exit code 2\b|refused the request|reports no endpoint|answered \d{3}|"
                       r"moved on to revision|has no @")
_TRACEBACK = "Traceback (most recent call last):"


def _by_text(lines: list[str]) -> Diagnosis | None:
    """The first rule that matches a line, looking from the last line up. A rollout's message is judged by its
    reason alone (not by what the rollback did afterwards); a traceback's ``File ...`` lines never count."""
    lines = [_reason(line) for line in lines if not line.startswith('File "')]
    rules: list[tuple[re.Pattern[str], str, Callable[[str], str]]] = [
        (_TIMEOUT, TIMEOUT_CAPACITY, _same),
        (_CAPACITY, TIMEOUT_CAPACITY, lambda line: _first_url(line) or line),
        (_INTEGRITY, DATA_INTEGRITY, _same),
        (_NETWORK, NETWORK_REACHABILITY, lambda line: _first_url(line) or _pool_url(line) or line),
        (_AUTH, SECRET_ACCESS, _same),
        (_DATA, DATA_INTEGRITY, _same),
        (_MODEL, MODEL_CODE, _same),
        (_ENDPOINT, ENDPOINT_CONFIGURATION, _same),
    ]
    for pattern, cause, evidence in rules:
        line = _last(lines, pattern)
        if line is not None:
            return Diagnosis(cause, evidence(line))
    if any(line.startswith(_TRACEBACK) for line in lines):
        return Diagnosis(MODEL_CODE, lines[-1])
    return None


def _same(line: str) -> str:
    return line


_ROLLED_BACK = re.compile(r"^(revision \d+(?: \(model version [^)]*\))?) rolled back: (.*?)"
                          r"(?:; (?:there is no previous revision|the rollback to revision \d+ |"
                          r"revision \d+ \(model version [^)]*\) serves).*)?$")


def _reason(line: str) -> str:
    """``revision 3 (model version 2) rolled back: WHY; what serves now`` as ``revision 3 (model version 2): WHY``."""
    found = _ROLLED_BACK.match(line)
    return f"{found.group(1)}: {found.group(2)}" if found else line


def _last(lines: Iterable[str], pattern: re.Pattern[str]) -> str | None:
    return next((line for line in reversed(list(lines)) if pattern.search(line)), None)


def _last_training_line(lines: list[str]) -> str | None:
    return next((line for line in reversed(lines) if line.startswith("training:")), None)


_URL = re.compile(r"""\bhttps?://[^\s"'<>;,()]+""")
_URI = re.compile(r"""\b[a-z][a-z0-9+.-]*://[^\s"'<>;,()]+|\b[\w.-]+(:\d+)?/[\w./-]+@sha256:[0-9a-f]+""")
_POOL = re.compile(r"(HTTPS?)ConnectionPool\(host='([^']+)', port=(\d+)\)")
_USER = re.compile(r"""(?:of user |credentials of )['"]([^'"]+)['"]""")
_SECRET = re.compile(r"\bsecret ((?:secret|vault|env):[A-Za-z0-9_.\-/]+)")


def _first_url(text: str) -> str | None:
    found = _URL.search(text)
    return found.group(0).rstrip(".:") if found else None


def _first_uri(text: str) -> str | None:
    found = _URI.search(text)
    return found.group(0).rstrip(".:") if found else None


def _pool_url(text: str) -> str | None:
    """requests' ``HTTPConnectionPool(host='h', port=p)`` as the URL it stands for."""
    found = _POOL.search(text)
    return f"{found.group(1).lower()}://{found.group(2)}:{found.group(3)}" if found else None


def _auth_evidence(exc: AuthError, message: str) -> str:
    url = exc.url or _first_url(message)
    if exc.secret_ref:
        return f"{exc.secret_ref}" + (f" at {url}" if url else "")
    user = _USER.search(message)
    if user:
        return f"user {user.group(1)!r}" + (f" at {url}" if url else "")
    return url or message.splitlines()[0]


def _not_found(message: str) -> Diagnosis:
    secret = _SECRET.search(message)
    if secret:
        return Diagnosis(SECRET_ACCESS, secret.group(1))
    first = message.splitlines()[0]
    if first.startswith("bucket "):
        return Diagnosis(ENDPOINT_CONFIGURATION, first)
    return Diagnosis(DATA_INTEGRITY, _first_uri(first) or first)


def _builtin(exc: BaseException, first: str) -> Diagnosis:
    """An exception lastmile did not raise on purpose: the network and time ones still say something."""
    if isinstance(exc, TimeoutError):
        return Diagnosis(TIMEOUT_CAPACITY, f"{type(exc).__name__}: {first}")
    if isinstance(exc, ConnectionError):
        return Diagnosis(NETWORK_REACHABILITY, _first_url(first) or f"{type(exc).__name__}: {first}")
    return Diagnosis(INTERNAL, f"{type(exc).__name__}: {first}")
