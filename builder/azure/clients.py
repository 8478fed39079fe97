"""Compute and Resource Manager clients built from ``Settings`` (endpoint, TLS trust, azure-core RetryPolicy).

Each retry azure-core's RetryPolicy makes (429 with Retry-After, 5xx, connection errors) is reported to the
callback ``report_retries`` installs (the CLI's progress line)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from builder.azure.progress import Progress, ProgressCallback, retry_message
from builder.azure.settings import Settings
from builder.errors import InputError

_retry_reporter: ProgressCallback | None = None


@contextlib.contextmanager
def report_retries(callback: ProgressCallback) -> Iterator[None]:
    """Send a ``Progress("retry", ...)`` to ``callback`` before every SDK retry while the block runs (any client,
    any thread)."""
    global _retry_reporter
    previous, _retry_reporter = _retry_reporter, callback
    try:
        yield
    finally:
        _retry_reporter = previous


def _retry_policy(settings: Settings):
    """azure-core's RetryPolicy that reports each retry before it sleeps (``RetryPolicy.sleep``: Retry-After when
    the response has one, else the backoff; azure-core 1.41.0 azure/core/pipeline/policies/_retry.py)."""
    from azure.core.pipeline.policies import RetryPolicy

    class ReportingRetryPolicy(RetryPolicy):
        def sleep(self, retry_settings, transport, response=None) -> None:  # type: ignore[override]
            reporter = _retry_reporter
            if reporter is not None:
                delay = (self.get_retry_after(response) if response is not None else None) \
                    or self.get_backoff_time(retry_settings)
                done = len(retry_settings["history"])  # increment() appended this failure
                status = response.http_response.status_code if response is not None else None
                reporter(Progress("retry", retry_message(status, delay, done + 1,
                                                         done + retry_settings["total"] + 1)))
            super().sleep(retry_settings, transport, response=response)

    # 408/429/500/502/503/504 and connection errors are retried; Retry-After (or retry-after-ms) wins
    # over the exponential backoff.
    # retry_status defaults to 3 in azure-core; a throttling burst can be longer, so allow the full total.
    return ReportingRetryPolicy(retry_total=settings.retry_total, retry_status=settings.retry_total,
                                retry_backoff_factor=settings.retry_backoff_factor,
                                retry_backoff_max=settings.retry_backoff_max)


def _credential(settings: Settings) -> Any:
    """The settings' credential; an environment azure-identity cannot use (for example AZURE_CLIENT_ID set but
    empty: EnvironmentCredential then builds a ClientSecretCredential that raises ValueError) is an InputError."""
    try:
        return settings.get_credential()
    except ValueError as exc:
        raise InputError(f"the Azure credential settings are not usable ({exc}); fix or unset the AZURE_* "
                         "credential variables, or sign in with `az login`", file="environment") from None


def _common(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "retry_policy": _retry_policy(settings),
        "polling_interval": settings.polling_interval,
        **settings.client_kwargs,
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    if settings.cert:
        kwargs["connection_verify"] = settings.cert
    return kwargs


def compute_client(settings: Settings):
    """``azure.mgmt.compute.ComputeManagementClient`` for ``settings``."""
    from azure.mgmt.compute import ComputeManagementClient

    return ComputeManagementClient(_credential(settings), settings.subscription_id, **_common(settings))


def resource_client(settings: Settings):
    """``azure.mgmt.resource.resources.ResourceManagementClient`` for ``settings``."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(_credential(settings), settings.subscription_id, **_common(settings))


def read_with_etag(operation, *args, **kwargs) -> tuple[dict[str, Any], str | None]:
    """Call an SDK ``get`` and return ``(resource as ARM JSON, its ETag)``: the ``ETag`` response header, else the
    body's ``etag``, else None (a resource provider that sends none; callers then re-read and re-check)."""

    def keep(pipeline_response, deserialized, _headers):
        return deserialized, pipeline_response.http_response.headers.get("ETag")

    model, etag = operation(*args, cls=keep, **kwargs)
    resource = model.as_dict()
    return resource, etag or resource.get("etag")


def if_match(etag: str | None) -> dict[str, Any]:
    """Keyword arguments that make a PUT/PATCH/DELETE conditional on ``etag`` (ARM answers 412 PreconditionFailed
    when the resource changed since it was read: Azure/azure-resource-manager-rpc v1.0/Addendum.md, "ETags for
    Resources"); none without an ETag."""
    return {"headers": {"If-Match": etag}} if etag else {}
