"""The two small on-disk structures the disk export writes itself: a GPT and a fixed-VHD footer.

Both replaced tools that cost far more than the bytes they write: ``sgdisk`` calls ``sync()`` and then sleeps
one second after every write to a disk (twice with ``-Z``), which flushes the whole machine's dirty pages; and
``qemu-img convert -O vpc -o subformat=fixed`` copies the whole raw disk (1.5 GB) only to append 512 bytes,
because a fixed VHD *is* the raw disk followed by a footer. Writing the footer onto the raw disk in place gives
the same file. The layouts are from the UEFI specification (GPT, chapter 5) and Microsoft's "Virtual Hard Disk
Image Format Specification" (footer); the tests check the results with ``sgdisk -v``,
``qemu-img info`` and the QEMU boot test.
"""

from __future__ import annotations

import struct
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
ENTRIES = 128
ENTRY_SIZE = 128
ENTRY_SECTORS = ENTRIES * ENTRY_SIZE // SECTOR  # 32
ESP_TYPE = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")  # EFI System Partition (sgdisk EF00)
LINUX_ROOT_X86_64 = uuid.UUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")  # Linux x86-64 root (sgdisk 8304)
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
FOOTER_SIZE = 512
CHS_MAX = (65535, 16, 255)  # cylinders, heads, sectors per track: "use the current size"


@dataclass(frozen=True)
class Partition:
    first_lba: int
    last_lba: int  # inclusive
    type_guid: uuid.UUID
    name: str
    guid: uuid.UUID


def _header(disk_guid: uuid.UUID, current: int, backup: int, entries_lba: int, last_lba: int,
            entries_crc: int) -> bytes:
    fields = [b"EFI PART", 0x00010000, 92, 0, 0, current, backup, 34, last_lba - 33, disk_guid.bytes_le,
              entries_lba, ENTRIES, ENTRY_SIZE, entries_crc]
    layout = "<8sIIIIQQQQ16sQIII"
    crc = zlib.crc32(struct.pack(layout, *fields))
    fields[3] = crc
    return struct.pack(layout, *fields).ljust(SECTOR, b"\0")


def write_gpt(path: Path, partitions: list[Partition], disk_guid: uuid.UUID | None = None) -> None:
    """Write a protective MBR, the primary and the backup GPT onto the disk file ``path`` (its size is fixed)."""
    size = path.stat().st_size
    if size % SECTOR:
        raise ValueError(f"{path}: size {size} is not a whole number of sectors")
    last = size // SECTOR - 1
    if len(partitions) > ENTRIES:
        raise ValueError("too many partitions")
    for part in partitions:
        if not 34 <= part.first_lba <= part.last_lba <= last - 33:
            raise ValueError(f"partition {part.name} ({part.first_lba}-{part.last_lba}) is outside the usable area")
    disk_guid = disk_guid or uuid.uuid4()
    entries = b"".join(
        struct.pack("<16s16sQQQ72s", p.type_guid.bytes_le, p.guid.bytes_le, p.first_lba, p.last_lba, 0,
                    p.name.encode("utf-16-le")[:72]) for p in partitions).ljust(ENTRIES * ENTRY_SIZE, b"\0")
    entries_crc = zlib.crc32(entries)
    mbr = bytearray(SECTOR)  # protective MBR: one partition of type 0xEE over the whole disk
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, min(last, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    primary = _header(disk_guid, 1, last, 2, last, entries_crc)
    backup = _header(disk_guid, last, 1, last - ENTRY_SECTORS, last, entries_crc)
    with open(path, "r+b") as handle:
        handle.write(bytes(mbr) + primary + entries)
        handle.seek((last - ENTRY_SECTORS) * SECTOR)
        handle.write(entries + backup)


def vhd_footer(size: int, unique_id: uuid.UUID | None = None, now: float | None = None) -> bytes:
    """The 512-byte footer of a fixed VHD of ``size`` bytes of data.

    Field for field what ``qemu-img convert -O vpc -o subformat=fixed,force_size`` writes (the export used it
    before), except the time stamp, unique id and checksum: creator "qem2" and the maximal CHS geometry
    65535/16/255, which tell readers (QEMU, Hyper-V, Azure) to take the disk size from the current-size field,
    since CHS cannot express every whole-MiB size.
    """
    stamp = int((time.time() if now is None else now) - VHD_EPOCH) & 0xFFFFFFFF
    fields = [b"conectix", 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, stamp, b"qem2", 0x00050003, b"Wi2k", size, size,
              *CHS_MAX, 2, 0, (unique_id or uuid.uuid4()).bytes, 0]
    layout = ">8sIIQI4sI4sQQHBBII16sB"
    checksum = (~sum(struct.pack(layout, *fields))) & 0xFFFFFFFF
    fields[14] = checksum
    return struct.pack(layout, *fields).ljust(FOOTER_SIZE, b"\0")


def append_footer(path: Path) -> int:
    """Make the raw disk ``path`` a fixed VHD in place by appending the footer; returns the data size."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size)
        handle.write(vhd_footer(size))
    return size
