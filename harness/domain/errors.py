"""Errors a user can cause, kept apart from our own bugs.

A :class:`UserError` ends the CLI with one line and a non-zero exit code, no traceback.
Anything else is a bug of ours and keeps its traceback.
"""


class LastmileError(Exception):
    """Base of every error lastmile raises on purpose."""

    exit_code = 1


class UserError(LastmileError):
    """Something the user can fix: bad config, a missing binary, a port in use."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def line(self) -> str:
        return f"{self}; {self.hint}" if self.hint else str(self)


class ConfigError(UserError):
    """The config file or an environment override is invalid (exit code 2)."""

    exit_code = 2


class UnreachableError(UserError):
    """A service the harness needs did not answer; the message names the endpoint, and ``url`` holds it when
    the raiser gives it (a diagnosis then needs no parsing)."""

    def __init__(self, message: str, *, url: str | None = None, hint: str | None = None,
                 exit_code: int | None = None):
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.url = url


class AuthError(UserError):
    """A service refused our credentials. ``secret_ref`` names the secret reference that holds them (never the
    value) and ``url`` the service, when the raiser knows them."""

    def __init__(self, message: str, *, secret_ref: str | None = None, url: str | None = None,
                 hint: str | None = None, exit_code: int | None = None):
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.secret_ref = secret_ref
        self.url = url


class NotFound(LastmileError):
    """A named object, blob, run or model version does not exist."""


class IntegrityError(LastmileError):
    """Content does not match the digest or checksum it was stored under."""


class NotBuilt(UserError):
    """A flavor that config accepts but whose adapter this version of lastmile does not have."""


class BuildFailed(UserError):
    """A build service ran the build and the build itself failed (a step of the build spec, the project's code);
    the message holds the service's details, then the build log's tail."""


class CapacityError(UserError):
    """A service kept refusing for load or failing (429, 503 SlowDown, 5xx) after bounded retries; ``url`` names
    it. Try again later, or give it more room."""

    def __init__(self, message: str, *, url: str | None = None, hint: str | None = None,
                 exit_code: int | None = None):
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.url = url
