"""Protobuf's wire format written by hand, for messages no SDK would encode (unknown fields,
repeated singular fields, invalid UTF-8, groups)."""

from __future__ import annotations

import struct

VARINT, I64, LEN, START_GROUP, END_GROUP, I32 = 0, 1, 2, 3, 4, 5


def varint(value: int) -> bytes:
    """``value`` as a varint; a negative one in two's complement (ten bytes), as int64 has it."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def scalar(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def fixed64(number: int, value: int) -> bytes:
    return tag(number, I64) + struct.pack("<Q", value)


def double(number: int, value: float) -> bytes:
    return tag(number, I64) + struct.pack("<d", value)


def fixed32(number: int, value: int) -> bytes:
    return tag(number, I32) + struct.pack("<I", value)


def delimited(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + varint(len(payload)) + payload
