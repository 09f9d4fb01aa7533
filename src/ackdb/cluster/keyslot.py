"""Redis Cluster's key slots: CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the
key, or of its hash tag, modulo 16384.

Owns: ``crc16`` and ``key_slot``. A hash tag is the part between the first ``{`` and the
first ``}`` after it, when that part is not empty (``{user1000}.following`` and
``{user1000}.followers`` share a slot; ``{}x`` hashes whole). Never does IO.
"""

from __future__ import annotations

SLOTS = 16384


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc16(data: bytes) -> int:
    crc = 0
    table = _TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


def key_slot(key: bytes) -> int:
    """The slot of ``key`` (Redis's ``keyHashSlot``)."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            key = key[start + 1 : end]
    return crc16(key) & (SLOTS - 1)
