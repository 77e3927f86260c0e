"""Reading files a line at a time, fast, in blocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

#: How much of a file is read at a time.
READ_BYTES = 8 << 20


def split_lines(handle: BinaryIO) -> Iterator[memoryview]:
    """The lines of ``handle`` from where it stands, each with its newline (the last maybe
    without), read in blocks: ``readline`` is slow on lines of a megabyte, and a mapped file
    that shrinks while it is read kills the process (SIGBUS), which a read never does.

    Each line is a view that is good only until the next one is asked for: the blocks are read
    into one buffer, again and again, so that neither a fresh block's pages nor a copy of each
    line are paid for.
    """
    buffer = bytearray(READ_BYTES)
    view = memoryview(buffer)
    pieces: list[bytes] = []  # of a line that runs on past the blocks read so far
    while size := handle.readinto(buffer):
        start = 0
        if pieces:
            end = buffer.find(b"\n", 0, size)
            if end < 0:
                pieces.append(bytes(view[:size]))
                continue
            pieces.append(bytes(view[: end + 1]))
            yield memoryview(b"".join(pieces))
            pieces, start = [], end + 1
        while (end := buffer.find(b"\n", start, size)) >= 0:
            yield view[start : end + 1]
            start = end + 1
        if start < size:
            pieces.append(bytes(view[start:size]))
    if pieces:
        yield memoryview(b"".join(pieces))


def lines_before(handle: BinaryIO, offset: int) -> int:
    """How many lines end before ``offset`` (a checkpoint a read resumes from), counted in
    blocks; ``handle`` is left at ``offset``, so that a resumed read names its lines by their
    numbers in the whole file."""
    counted, remaining = 0, offset
    while remaining > 0:
        chunk = handle.read(min(remaining, READ_BYTES))
        if not chunk:
            break
        counted += chunk.count(b"\n")
        remaining -= len(chunk)
    handle.seek(offset)
    return counted
