"""Local VHD "blobs" for the emulator: a ``file://`` URI stands in for a page blob in a storage account.

A gallery version made from a VHD needs a fixed-format VHD whose virtual size is a whole number of MiB
(Azure's rule for uploaded disks). ``check_fixed_vhd`` reads the 512-byte footer at the end of the file the
way Azure validates the blob: cookie ``conectix``, disk type 2 (fixed), a valid checksum, the current size a
multiple of 1 MiB, and the file exactly that size plus the footer.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from urllib.parse import unquote, urlsplit

MIB = 1024 * 1024
GIB = 1024 * MIB
FOOTER = 512
FIXED = 2


class VhdError(ValueError):
    """Why a file is not a usable fixed VHD."""


def local_path(uri: str) -> Path:
    """The file a ``file:///abs/path.vhd`` (or ``file://localhost/...``) URI names."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise VhdError(f"'{uri}' is not a file:///absolute/path URI on this machine")
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        raise VhdError(f"'{uri}' does not name an absolute path")
    return path


def checksum(footer: bytes) -> int:
    """The footer checksum: one's complement of the byte sum, with the checksum field (64..67) as zero."""
    return ~sum(footer[:64] + b"\0\0\0\0" + footer[68:]) & 0xFFFFFFFF


def check_fixed_vhd(path: Path) -> int:
    """The virtual size in bytes of the fixed VHD at ``path``; ``VhdError`` says what is wrong."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise VhdError(f"the VHD '{path}' does not exist") from None
    except OSError as exc:
        raise VhdError(f"cannot read the VHD '{path}': {exc.strerror or exc}") from None
    if not path.is_file() or size < FOOTER:
        raise VhdError(f"'{path}' is not a VHD file (no 512-byte footer)")
    with open(path, "rb") as handle:
        handle.seek(size - FOOTER)
        footer = handle.read(FOOTER)
    if footer[:8] != b"conectix":
        raise VhdError(f"'{path}' is not a VHD (no 'conectix' footer; convert it with qemu-img convert -O vpc "
                       "-o subformat=fixed,force_size)")
    (disk_type,) = struct.unpack(">I", footer[60:64])
    if disk_type != FIXED:
        raise VhdError(f"'{path}' is a {'dynamic' if disk_type == 3 else f'type {disk_type}'} VHD; Azure needs a "
                       "fixed VHD (qemu-img convert -O vpc -o subformat=fixed,force_size)")
    (stored,) = struct.unpack(">I", footer[64:68])
    if stored != checksum(footer):
        raise VhdError(f"'{path}': the VHD footer checksum is wrong (corrupt or truncated file)")
    (current,) = struct.unpack(">Q", footer[48:56])
    if current == 0 or current % MIB:
        raise VhdError(f"'{path}': the VHD's virtual size {current} bytes is not a whole number of MiB")
    if size != current + FOOTER:
        raise VhdError(f"'{path}': the file is {size} bytes, expected the virtual size {current} + 512 (a fixed "
                       "VHD holds the whole disk followed by the footer)")
    return current


def size_in_gb(virtual_size: int) -> int:
    """``osDiskImage.sizeInGB`` as Azure reports it: the virtual size rounded up to whole GiB."""
    return max(1, math.ceil(virtual_size / GIB))


def make_fixed_vhd(path: Path, virtual_size: int) -> Path:
    """Write a sparse all-zero fixed VHD of ``virtual_size`` bytes (tests and examples; the build uses qemu-img)."""
    footer = bytearray(FOOTER)
    footer[0:8] = b"conectix"
    struct.pack_into(">I", footer, 8, 2)  # features: reserved bit set
    struct.pack_into(">I", footer, 12, 0x00010000)  # format version 1.0
    struct.pack_into(">Q", footer, 16, 0xFFFFFFFFFFFFFFFF)  # data offset: none for a fixed disk
    footer[28:32] = b"bldr"
    struct.pack_into(">Q", footer, 40, virtual_size)
    struct.pack_into(">Q", footer, 48, virtual_size)
    struct.pack_into(">I", footer, 60, FIXED)
    struct.pack_into(">I", footer, 64, checksum(bytes(footer)))
    with open(path, "wb") as handle:
        handle.truncate(virtual_size)
        handle.seek(virtual_size)
        handle.write(bytes(footer))
    return path
