"""Streaming readers for degae's input formats (DEE2, GEO, OBO, GAF, gene2go).

Every reader opens plain or gzip files alike (by magic bytes, not by name), reports row-level
problems to an ``on_reject`` callback as a :class:`Rejection` (the row is skipped, the rest of the
file read), and raises the named :class:`~degae_tools.errors.InputFileError` subclass for anything
that makes the whole file unreadable. A caller that gives no ``on_reject`` reads strictly: the
first bad row raises, naming its line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from degae_tools.errors import InputFileError

GZIP_MAGIC = b"\x1f\x8b"
# A header line longer than this is not a header (a file of NUL bytes, a binary blob): the first
# line is read in bounded memory. 16 MiB holds the run names of about 1.4 million runs.
FIRST_LINE_LIMIT = 16 << 20
LINE_LIMIT = 64 << 20
READ_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """Content hash of a file, read in READ_BLOCK blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Rejection:
    """One skipped row: where it came from, why, and the raw text (``raw.rejected``)."""

    source: str
    line: int | None
    reason: str
    record: str | None


OnReject = Callable[[Rejection], None]


def reject(on_reject: OnReject | None, error: InputFileError, record: str | None = None) -> None:
    """A bad row: to ``on_reject`` (skipped, the file read on), or raised as ``error`` when the
    caller reads strictly."""
    if on_reject is None:
        raise error
    on_reject(Rejection(error.path, error.line, error.reason, record))


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

    Read in blocks of READ_BLOCK bytes and split here (a gzip stream's own ``readline`` costs a
    Python call per line). A truncated or corrupt gzip stream, a NUL byte or a line longer than
    LINE_LIMIT raise ``error`` naming the line where reading stopped.
    """
    try:
        handle = open_binary(path)
    except OSError as exc:
        raise error(path, None, f"cannot open the file ({describe(exc)})") from exc
    number = 0
    try:
        with handle:
            tail = b""
            for block in iter(lambda: handle.read(READ_BLOCK), b""):
                data = tail + block
                cut = data.rfind(b"\n") + 1
                tail = data[cut:]
                if len(tail) > LINE_LIMIT:
                    raise error(path, number + 1, f"a line longer than {LINE_LIMIT >> 20} MiB")
                for line in _lines(data[:cut]):
                    number += 1
                    if isinstance(line, bytes):  # raised only when a reader reaches the line
                        raise error(path, number, "binary data (NUL byte) in a text file")
                    yield number, line
            if tail:
                number += 1
                (line,) = _lines(tail + b"\n")
                if isinstance(line, bytes):
                    raise error(path, number, "binary data (NUL byte) in a text file")
                yield number, line
    except READ_ERRORS as exc:
        raise error(path, number + 1, f"unreadable file ({describe(exc)})") from exc


def _lines(data: bytes) -> list[str | bytes]:
    """The lines of `data` (whole lines, each ending in a newline): text, decoded in one piece
    when the block is UTF-8 text, line by line otherwise; a line with a NUL byte stays bytes."""
    if b"\x00" not in data:
        try:
            return [line.rstrip("\r") for line in data.decode("utf-8").split("\n")[:-1]]
        except UnicodeDecodeError:
            pass
    return [raw if b"\x00" in raw else decode(raw).rstrip("\r") for raw in data.split(b"\n")[:-1]]


def first_line(path: str | Path, error: type[InputFileError]) -> str | None:
    """The first line of a text file (newline and byte-order mark stripped; None when the file
    is empty), read in bounded memory: a NUL byte, a line over FIRST_LINE_LIMIT bytes or a
    damaged stream raise ``error``."""
    try:
        with open_binary(path) as handle:
            raw = handle.readline(FIRST_LINE_LIMIT)
    except READ_ERRORS as exc:
        raise error(path, 1, f"unreadable file ({describe(exc)})") from exc
    if not raw:
        return None
    if b"\x00" in raw:
        raise error(path, 1, "binary data (NUL byte) in a text file")
    if len(raw) >= FIRST_LINE_LIMIT and not raw.endswith(b"\n"):
        raise error(path, 1, f"the first line is longer than {FIRST_LINE_LIMIT >> 20} MiB")
    return decode(raw).lstrip("\ufeff").rstrip("\r\n")


def line_numbers(
    path: str | Path, keys: set[tuple[str, ...]], error: type[InputFileError]
) -> dict[tuple[str, ...], list[int]]:
    """The lines (1-based) whose leading tab-separated fields equal one of ``keys``, read
    streaming: where the rows are that a bulk reader refused without saying where."""
    if not keys:
        return {}
    width = len(next(iter(keys)))
    wanted = {tuple(k.encode() for k in key): key for key in keys}
    found: dict[tuple[str, ...], list[int]] = {}
    try:
        with open_binary(path) as handle:
            for number, raw in enumerate(handle, start=1):
                key = wanted.get(tuple(raw.rstrip(b"\r\n").split(b"\t", width)[:width]))
                if key is not None:
                    found.setdefault(key, []).append(number)
    except READ_ERRORS as exc:
        raise error(path, None, f"unreadable file ({describe(exc)})") from exc
    return found


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
