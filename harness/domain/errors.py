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
    """A service the harness needs did not answer; the message names the endpoint."""


class AuthError(UserError):
    """A service refused our credentials."""


class NotFound(LastmileError):
    """A named object, blob, run or model version does not exist."""


class IntegrityError(LastmileError):
    """Content does not match the digest or checksum it was stored under."""


class NotBuilt(UserError):
    """A flavor that config accepts but whose adapter this version of lastmile does not have."""
