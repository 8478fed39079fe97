"""Where a gallery image version comes from: managed image, VM, another gallery version, or VHD + storage account.

A VHD is an https:// blob URL, or (local emulator only) a ``file://`` URI of a fixed VHD on this machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from builder.errors import InputError

# One path segment of a resource id: printable ASCII without space or slash, and not "." or ".." (which would
# walk up the ARM path). Matched with re.fullmatch, so a trailing newline or any control character is refused.
_SEG = r"(?!\.{1,2}(?:/|$))[\x21-\x2e\x30-\x7e]+"
_RG = rf"/subscriptions/{_SEG}/resourceGroups/{_SEG}/providers/"
_URL_PATH = r"[\x21-\x22\x24-\x3e\x40-\x7e]+"  # printable ASCII without space, '?' and '#'
_PATTERNS = {
    "managed_image_id": (_RG + rf"Microsoft\.Compute/images/{_SEG}", "--source-image-id"),
    "vm_id": (_RG + rf"Microsoft\.Compute/virtualMachines/{_SEG}", "--source-vm-id"),
    "gallery_version_id": (_RG + rf"Microsoft\.Compute/galleries/{_SEG}/images/{_SEG}/versions/{_SEG}",
                           "--source-version-id"),
    # https:// blob URL, or file:///path.vhd: a VHD on this machine, only for the local emulator (its blob stand-in)
    "vhd_uri": (rf"(https://[a-z0-9.\-]+(:[0-9]+)?/{_URL_PATH}|file://(localhost)?/{_URL_PATH})\.vhd", "--vhd-uri"),
    "storage_account_id": (_RG + rf"Microsoft\.Storage/storageAccounts/{_SEG}", "--storage-account-id"),
}


@dataclass(frozen=True)
class Source:
    """Exactly one of ``managed_image_id``, ``vm_id``, ``gallery_version_id`` or ``vhd_uri`` (+ storage account)."""

    managed_image_id: str | None = None
    vm_id: str | None = None
    gallery_version_id: str | None = None
    vhd_uri: str | None = None
    storage_account_id: str | None = None

    def __post_init__(self) -> None:
        chosen = [k for k in ("managed_image_id", "vm_id", "gallery_version_id", "vhd_uri") if getattr(self, k)]
        if len(chosen) != 1:
            raise InputError("give exactly one source: --source-image-id, --source-vm-id, --source-version-id or "
                             "--vhd-uri with --storage-account-id", field="source")
        if bool(self.vhd_uri) != bool(self.storage_account_id):
            raise InputError("a VHD source needs both --vhd-uri and --storage-account-id", field="source")
        for key, (pattern, flag) in _PATTERNS.items():
            value = getattr(self, key)
            if value and not re.fullmatch(pattern, value, re.IGNORECASE | re.ASCII):
                raise InputError(f"{value[:300]!r} is not a valid {key.replace('_', ' ')}", field=flag)

    @property
    def is_local_file(self) -> bool:
        """A ``file://`` VHD: publishable to the local emulator only (real Azure needs it uploaded to a blob)."""
        return bool(self.vhd_uri and self.vhd_uri.lower().startswith("file:"))

    @property
    def kind(self) -> str:
        if self.vhd_uri:
            return "vhd"
        return "vm" if self.vm_id else "gallery-version" if self.gallery_version_id else "managed-image"

    def describe(self) -> str:
        return f"{self.kind} {self.vhd_uri or self.vm_id or self.gallery_version_id or self.managed_image_id}"

    def storage_profile(self) -> dict[str, Any]:
        """``properties.storageProfile`` of the version body."""
        if self.vhd_uri:
            return {"osDiskImage": {"source": {"uri": self.vhd_uri, "storageAccountId": self.storage_account_id}}}
        if self.vm_id:
            return {"source": {"virtualMachineId": self.vm_id}}
        return {"source": {"id": self.managed_image_id or self.gallery_version_id}}

    @classmethod
    def from_storage_profile(cls, storage: dict[str, Any]) -> Source | None:
        """The source recorded on an existing version (None when it names none we know)."""
        source = storage.get("source") or {}
        vhd = (storage.get("osDiskImage") or {}).get("source") or {}
        try:
            if vhd.get("uri"):
                return cls(vhd_uri=vhd["uri"], storage_account_id=vhd.get("storageAccountId"))
            if source.get("virtualMachineId"):
                return cls(vm_id=source["virtualMachineId"])
            if source.get("id"):
                key = "gallery_version_id" if "/galleries/" in source["id"].lower() else "managed_image_id"
                return cls(**{key: source["id"]})
        except InputError:
            return None
        return None

    def same_as(self, other: Source | None) -> bool:
        if other is None:
            return False
        mine = [(v or "").lower() for v in (self.managed_image_id, self.vm_id, self.gallery_version_id,
                                             self.vhd_uri, self.storage_account_id)]
        theirs = [(v or "").lower() for v in (other.managed_image_id, other.vm_id, other.gallery_version_id,
                                               other.vhd_uri, other.storage_account_id)]
        return mine == theirs
