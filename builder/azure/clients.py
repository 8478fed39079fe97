"""Compute and Resource Manager clients built from ``Settings`` (endpoint, TLS trust, azure-core RetryPolicy)."""

from __future__ import annotations

from typing import Any

from builder.azure.settings import Settings


def _common(settings: Settings) -> dict[str, Any]:
    from azure.core.pipeline.policies import RetryPolicy

    kwargs: dict[str, Any] = {
        # 408/429/500/502/503/504 and connection errors are retried; Retry-After (or retry-after-ms) wins
        # over the exponential backoff.
        # retry_status defaults to 3 in azure-core; a throttling burst can be longer, so allow the full total.
        "retry_policy": RetryPolicy(retry_total=settings.retry_total, retry_status=settings.retry_total,
                                    retry_backoff_factor=settings.retry_backoff_factor,
                                    retry_backoff_max=settings.retry_backoff_max),
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

    return ComputeManagementClient(settings.get_credential(), settings.subscription_id, **_common(settings))


def resource_client(settings: Settings):
    """``azure.mgmt.resource.resources.ResourceManagementClient`` for ``settings``."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(settings.get_credential(), settings.subscription_id, **_common(settings))


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
