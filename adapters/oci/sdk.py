"""What every oci adapter shares: building an SDK client, its bounded retries, and its errors in lastmile's terms.

The SDK's own default retry strategy makes up to 8 attempts over as much as 10 minutes, and its default circuit
breaker turns a throttled service into local ``CircuitBreakerError`` answers for 30 s. Here a client makes at most
:data:`ATTEMPTS` attempts within :data:`RETRY_BUDGET_S` (throttles, 5xx other than 501, timeouts and refused
connections, with exponential backoff and jitter), has no circuit breaker, and what still fails becomes one of
lastmile's errors naming the service, the endpoint and the signing key id, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

from harness.domain.errors import AuthError, CapacityError, LastmileError, NotFound, UnreachableError, UserError

ATTEMPTS = 4
"""Attempts per SDK call, the first included."""
RETRY_BUDGET_S = 30
"""The most time one SDK call may spend retrying."""
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 4

ClientT = TypeVar("ClientT")


class PreconditionFailed(LastmileError):
    """A conditional write was refused (HTTP 409/412): the object exists, or is no longer the version named."""


def retry_strategy(attempts: int = ATTEMPTS) -> Any:
    """The SDK retry strategy every oci adapter uses: bounded attempts and time, backoff with jitter."""
    import oci

    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True, max_attempts=attempts,
        total_elapsed_time_check=True, total_elapsed_time_seconds=RETRY_BUDGET_S,
        service_error_check=True,
        retry_base_sleep_time_seconds=BACKOFF_BASE_S, retry_max_wait_between_calls_seconds=BACKOFF_MAX_S,
        backoff_type=oci.retry.BACKOFF_FULL_JITTER_EQUAL_ON_THROTTLE_VALUE,
    ).get_retry_strategy()


def make_client(cls: type[ClientT], config: dict, signer: Any, endpoint: str | None = None,
                attempts: int = ATTEMPTS) -> ClientT:
    """An SDK client of ``cls`` signed by ``signer``, at ``endpoint`` when given (else the region's endpoint)."""
    import oci

    kwargs: dict[str, Any] = {"signer": signer, "retry_strategy": retry_strategy(attempts),
                              "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
                              "timeout": (5, 60)}
    if endpoint:
        kwargs["service_endpoint"] = endpoint.rstrip("/")
    return cls(config, **kwargs)  # type: ignore[call-arg]


def endpoint_of(client: Any) -> str:
    """Where an SDK client sends (scheme and host, without the API version path some clients add)."""
    parts = urlsplit(str(getattr(getattr(client, "base_client", None), "endpoint", "") or ""))
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "the OCI endpoint"


@contextmanager
def service_errors(service: str, endpoint: str, what: str, key_id: str) -> Iterator[None]:
    """Turns the SDK's errors into lastmile's: 404 -> :class:`NotFound`; 401/403 -> :class:`AuthError` naming the
    key id; 429 and 5xx (after the retries) -> :class:`CapacityError`; 409/412 -> :class:`PreconditionFailed`;
    no answer -> :class:`UnreachableError`; another refusal -> :class:`UserError` with OCI's code and message."""
    import oci
    from oci._vendor.requests.exceptions import RequestException as VendoredRequestException

    try:
        yield
    except oci.exceptions.MultipartUploadError as exc:
        cause = next((e for e in exc.error_causes if isinstance(e, BaseException)), None)
        if cause is None:
            raise UserError(f"{service} at {endpoint}: the multipart upload of {what} failed") from None
        with service_errors(service, endpoint, what, key_id):
            raise cause from None
    except oci.exceptions.ServiceError as exc:
        raise _mapped(exc, service, endpoint, what, key_id) from None
    except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout, VendoredRequestException,
            ConnectionError, TimeoutError) as exc:
        raise UnreachableError(f"{service} at {endpoint} did not answer for {what} ({type(exc).__name__}) "
                               f"after {ATTEMPTS} attempts", url=endpoint) from None


def _mapped(exc: Any, service: str, endpoint: str, what: str, key_id: str) -> LastmileError:
    status, code = int(exc.status or 0), str(exc.code or "")
    detail = f"{status} {code}".strip()
    if status == 404:
        return NotFound(f"{what}: not found in {service} ({detail})")
    if status in (401, 403):
        return AuthError(f"{service} at {endpoint} refused the request signed by key {key_id} for {what} ({detail})",
                         url=endpoint, hint="check the key's fingerprint, the user's policies and the clock")
    if status == 429 or status >= 500:
        return CapacityError(f"{service} at {endpoint} kept refusing {what} ({detail}) after {ATTEMPTS} attempts",
                             url=endpoint)
    if status in (409, 412):
        return PreconditionFailed(f"{what}: {service} refused a conditional write ({detail}: {exc.message})")
    return UserError(f"{service} at {endpoint} refused {what} ({detail}: {exc.message})")
