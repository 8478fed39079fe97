"""Turn Azure SDK exceptions into builder errors that name the ARM error code and message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from builder.errors import OperationError


def arm_code(exc: Exception) -> str | None:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None) if error is not None else None


def describe(exc: Exception) -> str:
    """``Code: message`` of an ARM error (first line only), else the exception text."""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        message = (getattr(error, "message", "") or "").strip().splitlines()[0:1]
        return f"{error.code}: {message[0] if message else ''}".rstrip(": ")
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def auth_failure(exc: Exception) -> str:
    """One line for a failed sign-in. DefaultAzureCredential's error lists every credential of its chain on many
    lines (azure-identity 1.27.0 azure/identity/_credentials/chained.py); only what to do is said."""
    if "failed to retrieve a token from the included credentials" in str(exc):
        return ("not signed in to Azure (no credential of the DefaultAzureCredential chain worked): sign in with "
                "`az login`, or use workload identity (OIDC) or a managed identity")
    return (f"authentication failed ({describe(exc)}); sign in with `az login`, workload identity (OIDC) or a "
            "managed identity")


@contextmanager
def arm_errors(action: str) -> Iterator[None]:
    """Re-raise SDK/identity failures while doing ``action`` as OperationError (exit 1, no traceback)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ClientAuthenticationError as exc:
        raise OperationError(f"{action}: {auth_failure(exc)}") from None
    except HttpResponseError as exc:
        raise OperationError(f"{action}: {describe(exc)}") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise OperationError(f"{action}: cannot reach Azure Resource Manager ({describe(exc)})") from None
    except Exception as exc:  # azure-identity raises its own CredentialUnavailableError
        if type(exc).__name__ == "CredentialUnavailableError":
            raise OperationError(f"{action}: no Azure credential available ({describe(exc)})") from None
        raise
