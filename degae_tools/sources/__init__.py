"""Streaming readers for degae's input formats (DEE2, GEO, OBO, GAF, gene2go).

Every reader opens plain or gzip files alike (by magic bytes, not by name), reports row-level
problems to an ``on_reject`` callback as a :class:`Rejection`, and raises the named
:class:`~degae_tools.errors.InputFileError` subclass for anything that makes the whole file
unreadable.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from degae_tools.errors import InputFileError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Rejection:
    """One skipped row: where it came from, why, and the raw text (``raw.rejected``)."""

    source: str
    line: int | None
    reason: str
    record: str | None


OnReject = Callable[[Rejection], None]

# What a damaged file raises while it is being read: a truncated or corrupt gzip stream, bytes
# that are not UTF-8.
READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, OSError)


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """Open ``path`` for reading bytes, decompressing it when it starts with the gzip magic."""
    with open(path, "rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    if compressed:
        return gzip.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - the caller closes the returned stream


def read_bytes(path: str | Path, error: type[InputFileError]) -> bytes:
    """All (decompressed) bytes of ``path``; a damaged gzip stream raises ``error``."""
    try:
        with open_binary(path) as handle:
            return handle.read()
    except READ_ERRORS as exc:
        raise error(path, None, f"unreadable file ({describe(exc)})") from exc


def iter_lines(path: str | Path, error: type[InputFileError]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, newline stripped) from a text file.

    A truncated or corrupt gzip stream or a NUL byte raise ``error`` naming the line where
    reading stopped, instead of leaking ``EOFError`` or ``zlib.error``.
    """
    try:
        handle = open_binary(path)
    except OSError as exc:
        raise error(path, None, f"cannot open the file ({describe(exc)})") from exc
    number = 0
    try:
        with handle:
            for number, raw in enumerate(handle, start=1):  # noqa: B007 - used after the loop
                if b"\x00" in raw:
                    raise error(path, number, "binary data (NUL byte) in a text file")
                yield number, decode(raw).rstrip("\r\n")
    except READ_ERRORS as exc:
        raise error(path, number + 1, f"unreadable file ({describe(exc)})") from exc


def decode(raw: bytes) -> str:
    """UTF-8, or Latin-1 for a line that is not UTF-8 (old GEO and SRA titles: 'µg', '°C')."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def describe(exc: BaseException) -> str:
    """A short, user-facing description of a low-level read error."""
    if isinstance(exc, EOFError):
        return "truncated gzip stream"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return f"corrupt gzip stream: {exc}"
    return str(exc) or type(exc).__name__
