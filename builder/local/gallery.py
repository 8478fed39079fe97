"""The gallery a local build publishes to.

With Azure settings in the environment (``AZURE_SUBSCRIPTION_ID``, ``BUILDER_ARM_ENDPOINT``: see
``builder.azure.settings_from_env``) that gallery; otherwise the **local gallery**: the ARM emulator's state in
``<state>/gallery``, served in-process (``EmulatorServer`` on a free port) only while the build numbers its
version and while it publishes. ``builder versions|promote|yank|gc`` open the same state when no Azure settings
are configured, and ``builder emulator --state <state>/gallery`` serves it for the SDK or the Azure CLI.

A local build's source is its fixed VHD as a ``file://`` URI with a storage account id in the gallery's
subscription; only an emulator on 127.0.0.1 accepts that (real Azure needs the VHD uploaded to a page blob,
which builder does not do: a local VHD bound for real Azure is refused before the build starts).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.azure.settings import Settings, emulator_settings, settings_from_env
from builder.errors import InputError, OperationError

GALLERY_DIR = "gallery"
LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
STORAGE_RESOURCE_GROUP = "builder-local-vhds"
STORAGE_ACCOUNT = "builderlocalvhds"
LOCK_FILE = ".gallery.lock"
LOCK_WAIT = 120.0
ENV_NAMES = ("AZURE_SUBSCRIPTION_ID", "BUILDER_ARM_ENDPOINT")


def local_gallery_dir(state_dir: Path) -> Path:
    return state_dir / GALLERY_DIR


def configured_in_env(env: dict[str, str] | None = None) -> bool:
    """True when the environment names a gallery (Azure or an emulator) rather than the local one."""
    env = os.environ if env is None else env
    return any(env.get(name, "").strip() for name in ENV_NAMES)


def storage_account_id(subscription_id: str) -> str:
    """The storage account a local VHD is said to live in (the emulator only checks its subscription)."""
    return (f"/subscriptions/{subscription_id}/resourceGroups/{STORAGE_RESOURCE_GROUP}/providers/"
            f"Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}")


@dataclass
class GalleryTarget:
    """``settings`` from the environment, or ``local_state`` for the in-process local gallery emulator."""

    settings: Settings | None = None
    local_state: Path | None = None

    @property
    def is_local_gallery(self) -> bool:
        return self.local_state is not None

    @property
    def label(self) -> str:
        if self.local_state is not None:
            return f"the local gallery emulator ({self.local_state})"
        assert self.settings is not None
        if self.settings.is_local:
            return f"the emulator at {self.settings.base_url}"
        return f"Azure (subscription {self.settings.subscription_id})"

    def as_dict(self) -> dict[str, str | None]:
        kind = "local-gallery" if self.local_state else "emulator" if self.settings and self.settings.is_local \
            else "azure"
        return {"kind": kind, "state": str(self.local_state) if self.local_state else None,
                "endpoint": self.settings.base_url if self.settings else None}


def resolve_target(state_dir: Path, env: dict[str, str] | None = None) -> GalleryTarget:
    """Where a local build publishes; bad Azure settings are an ``InputError`` (exit 2)."""
    if configured_in_env(env):
        return GalleryTarget(settings=settings_from_env(env))
    return GalleryTarget(local_state=local_gallery_dir(state_dir).resolve())


def require_local_vhd_target(target: GalleryTarget) -> None:
    """Refuse (exit 2) to send a local VHD to real Azure: that needs a blob upload builder does not do."""
    if target.settings is not None and not target.settings.is_local:
        raise InputError("a local build publishes its VHD from this machine (file://), which only an emulator takes; "
                         f"publishing to {target.label} needs the VHD uploaded to a page blob first, which builder "
                         "does not do. Build with --no-publish, upload the VHD (e.g. `az storage blob upload --type "
                         "page`) and run `builder publish IMAGE --vhd-uri https://... --storage-account-id ...`; or "
                         "unset AZURE_SUBSCRIPTION_ID/BUILDER_ARM_ENDPOINT to publish to the local gallery emulator",
                         file="environment", field="AZURE_SUBSCRIPTION_ID")


@contextlib.contextmanager
def _locked(state: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """One in-process emulator per local gallery at a time (two would overwrite each other's state.json)."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / LOCK_FILE, "a+b") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationError(f"the local gallery {state} stayed in use by another builder process for "
                                         f"{wait:.0f} s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def serve_local(state: Path) -> Iterator[Settings]:
    """Serve the local gallery ``state`` in this process (fast timings) and yield SDK settings for it."""
    from builder.emulator import EmulatorConfig, EmulatorServer

    with _locked(state):
        server = EmulatorServer(state, 0, EmulatorConfig(operation_delay=0.05, replication_delay=0.2)).start()
        try:
            yield emulator_settings(server.base_url, str(server.cert), LOCAL_SUBSCRIPTION, progress_interval=0.2)
        finally:
            server.stop()


@contextlib.contextmanager
def open_gallery(target: GalleryTarget) -> Iterator[Settings]:
    """SDK settings for ``target``; the local gallery's emulator runs only inside the ``with``."""
    if target.local_state is None:
        assert target.settings is not None
        yield target.settings
        return
    with serve_local(target.local_state) as settings:
        yield settings


def browse_hint(state: Path, image: str) -> str:
    """How to look at the local gallery after a build."""
    return (f"browse it: builder versions {image}   (no Azure settings: reads {state})\n"
            f"  or serve it: builder emulator --state {state} --port 8443   and in another shell:\n"
            f"  export BUILDER_ARM_ENDPOINT=https://127.0.0.1:8443 BUILDER_ARM_CERT={state}/emulator-cert.pem "
            f"AZURE_SUBSCRIPTION_ID={LOCAL_SUBSCRIPTION}")
