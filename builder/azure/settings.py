"""Connection settings for Azure Resource Manager: endpoint, TLS trust, credential, retry and polling."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from builder.errors import InputError

LOCAL_HOSTS = ("127.0.0.1",)


class StaticTokenCredential:
    """A fixed bearer token, only for the local emulator (``settings_from_env`` refuses it elsewhere)."""

    def __init__(self, token: str = "emulator-token") -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


@dataclass
class Settings:
    """Everything a client needs. ``base_url`` None means public Azure; ``cert`` is the PEM for connection_verify."""

    subscription_id: str
    base_url: str | None = None
    cert: str | None = None
    credential: Any = None
    polling_interval: float = 30.0
    retry_total: int = 10
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 60.0
    progress_interval: float = 10.0
    client_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.base_url is not None and urlsplit(self.base_url).hostname in LOCAL_HOSTS

    def get_credential(self) -> Any:
        if self.credential is None:
            from azure.identity import DefaultAzureCredential

            self.credential = DefaultAzureCredential()
        return self.credential


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"expected a number of seconds, got '{raw}'", file="environment", field=name) from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"must be a finite number >= 0, got '{raw}'", file="environment", field=name)
    return value


def settings_from_env(env: dict[str, str] | None = None, subscription_id: str | None = None) -> Settings:
    """Settings from ``AZURE_SUBSCRIPTION_ID``, ``BUILDER_ARM_ENDPOINT``, ``BUILDER_ARM_CERT`` (and tuning vars).

    Credentials: azure-identity ``DefaultAzureCredential`` (created on first use), or a static test token
    when the endpoint is the local emulator on 127.0.0.1.
    """
    env = dict(os.environ if env is None else env)
    subscription = subscription_id or env.get("AZURE_SUBSCRIPTION_ID", "").strip()
    if not subscription:
        raise InputError("missing subscription: set AZURE_SUBSCRIPTION_ID or pass --subscription",
                         file="environment", field="AZURE_SUBSCRIPTION_ID")
    base_url = env.get("BUILDER_ARM_ENDPOINT", "").strip().rstrip("/") or None
    if base_url and urlsplit(base_url).scheme != "https":
        raise InputError(f"'{base_url}' must be an https:// URL", file="environment", field="BUILDER_ARM_ENDPOINT")
    cert = env.get("BUILDER_ARM_CERT", "").strip() or None
    if cert and not os.path.isfile(cert):
        raise InputError(f"certificate file '{cert}' not found", file="environment", field="BUILDER_ARM_CERT")
    settings = Settings(
        subscription_id=subscription, base_url=base_url, cert=cert,
        polling_interval=_float(env, "BUILDER_ARM_POLLING_INTERVAL", 30.0),
        retry_backoff_factor=_float(env, "BUILDER_ARM_RETRY_BACKOFF", 0.8),
        progress_interval=_float(env, "BUILDER_PROGRESS_INTERVAL", 10.0),
    )
    if settings.is_local:
        settings.credential = StaticTokenCredential()
    return settings


def emulator_settings(base_url: str, cert: str, subscription_id: str = "00000000-0000-0000-0000-000000000000",
                      progress_interval: float = 0.5) -> Settings:
    """Settings for a local emulator (``EmulatorServer.base_url`` / ``.cert``): static token, no polling delay."""
    if urlsplit(base_url).hostname not in LOCAL_HOSTS:
        raise InputError(f"'{base_url}' is not a local emulator (127.0.0.1)", field="base_url")
    return Settings(subscription_id, base_url=base_url.rstrip("/"), cert=cert, credential=StaticTokenCredential(),
                    polling_interval=0, progress_interval=progress_interval)
