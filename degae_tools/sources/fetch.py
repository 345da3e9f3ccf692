"""Download a compendium from DEE2 and GEO into a folder that `flows.ingest` loads.

Endpoints, as getDEE2 (markziemann/getDEE2, ``R/getDEE2.R``) and GEOquery use them:

- ``{dee2}/metadata/<species>_metadata.tsv.cut``: the species' run metadata (``getDEE2Metadata``).
- ``{dee2}/cgi-bin/request.sh?org=<species>&x=SRR1&x=SRR2...``: a zip of those runs' data
  (``getDEE2``, whose ``loadGeneCounts``, ``loadGeneInfo``, ``loadQcMx`` and ``loadSummaryMeta``
  read ``GeneCountMatrix.tsv``, ``GeneInfo.tsv``, ``QC_Matrix.tsv`` and ``MetadataSummary.tsv``
  from it; ``shared/data/dee2/DEE_count_data.zip`` is one such answer).
- ``{geo}/geo/series/<stub>/<GSE>/matrix/<GSE>_series_matrix.txt.gz``, the stub being the accession
  with its last three digits replaced by ``nnn`` (GEOquery ``getGEOfile``/``getGSE``:
  ``gsub("\\d{1,3}$", "nnn", GEO)``); a series on several platforms has
  ``<GSE>-GPLnnn_series_matrix.txt.gz`` files instead, listed in that ``matrix/`` folder.

The folder it writes uses the names `degae_tools.sources.layout` recognises (as `simulate` does):
``dee2/<species>_metadata.tsv.cut``, ``GeneInfo.tsv``, ``counts/<GSE>_GeneCountMatrix.tsv.gz`` (the
series' bundles side by side) and ``geo/<GSE>[-GPLnnn]_series_matrix.txt.gz``. The bundles stay, as
served, in ``dee2/<GSE>/<first run>-<last run>.zip``; ``fetch.json`` records each download's URL,
size and SHA-256 and each series' runs, so a rerun skips what is complete and up to date.

Every download goes to ``<name>.part``, resumes with an HTTP ``Range`` request when the server
honours it (else restarts), is checked against ``Content-Length`` and for zip or gzip integrity, and
only then is renamed into place. Connection errors, 5xx answers and broken transfers are retried
with exponential backoff; a host that never answers raises `OfflineError`.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from degae_tools.atomic import atomic_path
from degae_tools.errors import DegaeError, FetchError, InputFileError, OfflineError

T = TypeVar("T")

DEFAULT_DEE2_URL = "http://dee2.io"
DEFAULT_GEO_URL = "https://ftp.ncbi.nlm.nih.gov"
# getDEE2Metadata's list of the species DEE2 serves.
SPECIES = (
    "athaliana",
    "celegans",
    "dmelanogaster",
    "drerio",
    "ecoli",
    "hsapiens",
    "mmusculus",
    "rnorvegicus",
    "scerevisiae",
)
SERIES = re.compile(r"GSE[0-9]+")
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
MANIFEST = "fetch.json"
BUNDLE_COUNTS = "GeneCountMatrix.tsv"
BUNDLE_GENES = "GeneInfo.tsv"
METADATA_HEADER = b"SRR_accession\t"
VALIDATOR_SUFFIX = ".validator"
USER_AGENT = "degae-tools-fetch"
CHUNK = 1 << 16
MAX_BACKOFF_S = 60.0
# HTTP answers worth asking again: request timeout, too many requests, and every 5xx.
RETRIED_STATUS = {408, 429}
UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH}


@dataclass(frozen=True)
class FetchConfig:
    """What to fetch and how hard to try; `degae-tools fetch` options map onto these fields.

    Without series only the species metadata is downloaded. The base URLs default to
    ``$DEGAE_DEE2_URL`` / ``$DEGAE_GEO_URL``, else the public servers.
    """

    species: str = "mmusculus"
    series: tuple[str, ...] = ()
    max_runs_per_request: int = 100
    retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    dee2_url: str = field(
        default_factory=lambda: os.environ.get("DEGAE_DEE2_URL", DEFAULT_DEE2_URL)
    )
    geo_url: str = field(default_factory=lambda: os.environ.get("DEGAE_GEO_URL", DEFAULT_GEO_URL))
    refresh_metadata: bool = False

    def __post_init__(self) -> None:
        if self.species not in SPECIES:
            raise DegaeError(f"unknown species {self.species!r}; DEE2 serves {', '.join(SPECIES)}")
        for accession in self.series:
            if not SERIES.fullmatch(accession):
                raise DegaeError(
                    f"{accession!r} is not a GEO series accession; expected GSE and digits"
                )
        for name in ("dee2_url", "geo_url"):
            if urllib.parse.urlsplit(getattr(self, name)).scheme not in ("http", "https"):
                raise DegaeError(f"{name} {getattr(self, name)!r}: expected an http(s) URL")
        if self.max_runs_per_request < 1 or self.retries < 0:
            raise DegaeError("max_runs_per_request must be at least 1 and retries at least 0")
        object.__setattr__(self, "series", tuple(dict.fromkeys(self.series)))
        object.__setattr__(self, "dee2_url", self.dee2_url.rstrip("/"))
        object.__setattr__(self, "geo_url", self.geo_url.rstrip("/"))


@dataclass
class FetchSummary:
    """Series fetched, already up to date and failed (with the reason), runs and bytes."""

    out_dir: str
    species: str
    metadata_downloaded: bool = False
    fetched: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    bytes_downloaded: int = 0

    def as_dict(self) -> dict:
        """The summary as plain JSON-ready values."""
        return asdict(self)


def metadata_url(config: FetchConfig) -> str:
    """The species' DEE2 run metadata (getDEE2Metadata's URL)."""
    return f"{config.dee2_url}/metadata/{config.species}_metadata.tsv.cut"


def bundle_url(config: FetchConfig, runs: Iterable[str]) -> str:
    """DEE2's ``request.sh`` URL for a zip of `runs` (getDEE2's ``org=...&x=SRR...`` query)."""
    query = urllib.parse.urlencode([("org", config.species), *(("x", run) for run in runs)])
    return f"{config.dee2_url}/cgi-bin/request.sh?{query}"


def series_matrix_url(config: FetchConfig, gse: str, file_name: str = "") -> str:
    """A file in GEO's ``matrix/`` folder of `gse` (the folder itself when `file_name` is empty)."""
    stub = re.sub(r"\d{1,3}$", "nnn", gse, count=1)
    return f"{config.geo_url}/geo/series/{stub}/{gse}/matrix/{file_name}"


def read_series_file(path: str | Path) -> tuple[str, ...]:
    """GEO series accessions listed one per line (blank lines and ``#`` comments skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, None, f"cannot read the series list ({exc})") from exc
    series = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if value and not SERIES.fullmatch(value):
            raise InputFileError(
                path, number, f"expected one GEO series accession such as GSE12345, got {value!r}"
            )
        if value:
            series.append(value)
    return tuple(series)


def fetch(out_dir: str | Path, config: FetchConfig) -> FetchSummary:
    """Download the species metadata, then each series' GEO matrix and DEE2 runs into `out_dir`.

    A series that fails is recorded in ``summary.failed`` and the others go on; an unreachable
    server stops everything with `OfflineError`.
    """
    from degae_tools.sources.dee2 import iter_metadata

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.open(out)
    summary = FetchSummary(out_dir=str(out), species=config.species)
    metadata = out / "dee2" / f"{config.species}_metadata.tsv.cut"
    url = metadata_url(config)
    if config.refresh_metadata or not manifest.has(metadata, url):
        summary.bytes_downloaded += download(url, metadata, config, check_metadata)
        manifest.record(metadata, url)
        summary.metadata_downloaded = True
    wanted = set(config.series)
    runs: dict[str, list[str]] = {gse: [] for gse in config.series}
    for batch in iter_metadata(metadata) if wanted else ():
        for gse, srr in batch.filter(batch["gse"].is_in(wanted)).select("gse", "srr").iter_rows():
            runs[gse].append(srr)
    for gse in config.series:
        selected = sorted(set(runs[gse]))
        if not selected:
            summary.failed[gse] = f"no runs of {gse} in {metadata.name}"
        elif manifest.series_done(gse, selected):
            summary.up_to_date.append(gse)
        else:
            try:
                n_bytes, n_runs = fetch_series(out, gse, selected, config, manifest)
            except OfflineError:
                raise
            except FetchError as exc:
                summary.failed[gse] = str(exc)
                continue
            summary.fetched.append(gse)
            summary.bytes_downloaded += n_bytes
            summary.runs += n_runs
    return summary


def fetch_series(
    out: Path, gse: str, runs: list[str], config: FetchConfig, manifest: Manifest
) -> tuple[int, int]:
    """One series: its GEO series matrices, its DEE2 bundles, then the merged count matrix.

    Returns the bytes downloaded and the number of runs DEE2 returned counts for.
    """
    n_bytes = 0
    matrices, fetched = fetch_series_matrices(out / "geo", gse, config)
    n_bytes += fetched
    bundles = []
    for start in range(0, len(runs), config.max_runs_per_request):
        batch = runs[start : start + config.max_runs_per_request]
        bundle = out / "dee2" / gse / f"{batch[0]}-{batch[-1]}.zip"
        url = bundle_url(config, batch)
        if not manifest.has(bundle, url):
            n_bytes += download(url, bundle, config, check_zip)
            manifest.record(bundle, url)
        bundles.append(bundle)
    for stale in set((out / "dee2" / gse).glob("*.zip")) - set(bundles):
        stale.unlink()
    genes = out / BUNDLE_GENES
    if not genes.exists():
        _write_atomically(genes, _member(bundles[0], BUNDLE_GENES))
    counts = out / "counts" / f"{gse}_GeneCountMatrix.tsv.gz"
    returned = merge_counts(bundles, counts)
    files = [counts, *matrices]
    manifest.finish_series(gse, runs, returned, files)
    return n_bytes, len(returned)


def fetch_series_matrices(geo_dir: Path, gse: str, config: FetchConfig) -> tuple[list[Path], int]:
    """Download `gse`'s series matrix, or one per platform when GEO splits it; returns the paths."""
    name = f"{gse}_series_matrix.txt.gz"
    try:
        return [geo_dir / name], download(
            series_matrix_url(config, gse, name), geo_dir / name, config, check_gzip
        )
    except FetchError as exc:
        if not _is_not_found(exc):
            raise
    listing_url = series_matrix_url(config, gse)
    try:
        listing = _with_retries(listing_url, config, lambda: _read(listing_url, config.timeout_s))
    except FetchError as exc:
        if not _is_not_found(exc):
            raise
        listing = b""
    pattern = rf'href="(?:[^"]*/)?({gse}-GPL[0-9]+_series_matrix\.txt\.gz)"'
    names = sorted(set(re.findall(pattern, listing.decode("utf-8", "replace"))))
    if not names:
        raise FetchError(f"GEO has no series matrix for {gse} (not at {listing_url}{name})")
    n_bytes = 0
    for platform_name in names:
        url = series_matrix_url(config, gse, platform_name)
        n_bytes += download(url, geo_dir / platform_name, config, check_gzip)
    return [geo_dir / n for n in names], n_bytes


def merge_counts(bundles: list[Path], dest: Path) -> list[str]:
    """Put the bundles' ``GeneCountMatrix.tsv`` side by side in one gzipped wide matrix.

    Returns the runs it holds, in column order; the file appears whole or not at all.
    """
    gene_ids: list[str] | None = None
    runs: list[str] = []
    columns: list[list[str]] = []
    for bundle in bundles:
        try:
            lines = _member(bundle, BUNDLE_COUNTS).decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise FetchError(f"{bundle.name}: {BUNDLE_COUNTS} is not UTF-8 text") from exc
        header = lines[0].split("\t", 1) if lines else []
        if len(header) < 2:
            continue
        rows = [line.split("\t", 1) for line in lines[1:] if line]
        ids = [row[0] for row in rows]
        if gene_ids is None:
            gene_ids = ids
        elif ids != gene_ids:
            raise FetchError(
                f"{bundle.name}: {BUNDLE_COUNTS} lists other genes than the first batch"
            )
        runs.extend(header[1].split("\t"))
        columns.append([row[1] if len(row) > 1 else "" for row in rows])
    if gene_ids is None:
        raise FetchError(f"DEE2 returned no gene counts in {', '.join(b.name for b in bundles)}")
    with (
        atomic_path(dest, ".part") as part,
        gzip.open(part, "wt", encoding="utf-8", compresslevel=6) as out,
    ):
        out.write("\t".join(["GeneID", *runs]) + "\n")
        for i, gene in enumerate(gene_ids):
            out.write("\t".join([gene, *(column[i] for column in columns)]) + "\n")
    return runs


def download(
    url: str, dest: Path, config: FetchConfig, check: Callable[[Path], None] | None = None
) -> int:
    """Fetch `url` into `dest` through ``dest.part`` (resumed, size- and `check`-ed, renamed).

    Returns the bytes transferred. Raises `OfflineError` when the host never answered and
    `FetchError` when the server refused or every try broke; `dest` is never left half written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    transferred = 0

    def attempt() -> None:
        nonlocal transferred
        transferred += _transfer(url, part, config.timeout_s)
        try:
            if check is not None:
                check(part)
        except (BrokenTransfer, FetchError):
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        part.with_name(part.name + VALIDATOR_SUFFIX).unlink(missing_ok=True)

    _with_retries(url, config, attempt)
    return transferred


class BrokenTransfer(Exception):
    """A transfer that went wrong in a way another try may fix: short, damaged, mis-resumed."""


def check_metadata(path: Path) -> None:
    """A DEE2 metadata table starts with ``SRR_accession<TAB>``, not an HTML error page."""
    with open(path, "rb") as handle:
        head = handle.read(200)
    if not head.startswith(METADATA_HEADER):
        raise FetchError(f"DEE2 sent something other than a metadata table: {_shown(head)}")


def check_zip(path: Path) -> None:
    """A whole zip: every member's CRC matches (`zipfile.ZipFile.testzip`)."""
    with open(path, "rb") as handle:
        head = handle.read(200)
    if not head.startswith(b"PK"):
        raise FetchError(f"DEE2 sent something other than a zip: {_shown(head)}")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise BrokenTransfer(f"damaged zip ({exc})") from exc
    if damaged is not None:
        raise BrokenTransfer(f"damaged zip member {damaged}")


def check_gzip(path: Path) -> None:
    """A whole gzip stream: it decompresses to its end and its CRC matches."""
    with open(path, "rb") as handle:
        head = handle.read(200)
    if not head.startswith(b"\x1f\x8b"):
        raise FetchError(f"the server sent something other than gzip data: {_shown(head)}")
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(CHUNK):
                pass
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BrokenTransfer(f"damaged gzip stream ({exc})") from exc


@dataclass
class Manifest:
    """``fetch.json``: every download's URL, size and SHA-256, and every fetched series' runs."""

    path: Path
    files: dict[str, dict] = field(default_factory=dict)
    series: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def open(cls, out_dir: Path) -> Manifest:
        """The manifest in `out_dir`; an unreadable one counts as empty (everything refetched)."""
        path = out_dir / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, dict(data["files"]), dict(data["series"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path)

    def key(self, path: Path) -> str:
        """`path` relative to the fetched folder, as stored."""
        return path.relative_to(self.path.parent).as_posix()

    def has(self, path: Path, url: str) -> bool:
        """Whether `path` was downloaded whole from `url` and still has the size it had."""
        entry = self.files.get(self.key(path))
        return (
            entry is not None
            and entry.get("url") == url
            and path.is_file()
            and path.stat().st_size == entry.get("bytes")
        )

    def record(self, path: Path, url: str) -> None:
        """Note a completed download and save."""
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        self.files[self.key(path)] = {
            "url": url,
            "bytes": path.stat().st_size,
            "sha256": digest.hexdigest(),
            "fetched_at": _now(),
        }
        self.save()

    def series_done(self, gse: str, runs: list[str]) -> bool:
        """Whether `gse` was fetched with exactly these runs and its files are all still there."""
        entry = self.series.get(gse)
        if entry is None or entry.get("runs") != runs:
            return False
        return all((self.path.parent / name).is_file() for name in entry.get("files", ()))

    def finish_series(
        self, gse: str, runs: list[str], returned: list[str], files: list[Path]
    ) -> None:
        """Note a completed series (its runs asked for, runs returned, files) and save."""
        self.series[gse] = {
            "runs": runs,
            "runs_returned": returned,
            "files": [self.key(f) for f in files],
            "fetched_at": _now(),
        }
        self.save()

    def save(self) -> None:
        """Write the manifest atomically."""
        data = {"files": self.files, "series": self.series}
        _write_atomically(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


def _transfer(url: str, part: Path, timeout: float) -> int:
    """One HTTP GET into `part`, appending when the server resumes at its end; bytes received."""
    offset = part.stat().st_size if part.exists() else 0
    validator = part.with_name(part.name + VALIDATOR_SUFFIX)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator.is_file():
            # RFC 9110 13.1.5: the rest of the file only if it has not changed, else all of it.
            headers["If-Range"] = validator.read_text(encoding="utf-8")
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        # The range starts at or past the end: the partial file is whole, or not this file.
        match = UNSATISFIED_RANGE.fullmatch(exc.headers.get("Content-Range", ""))
        exc.close()
        if match is not None and int(match[1]) == offset:
            return 0
        part.unlink()
        raise BrokenTransfer("the partial file does not fit the server's; restarting") from None
    with response:
        start, expected = _resume_point(response, part, offset)
        tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if not start and tag:
            validator.write_text(tag, encoding="utf-8")
        elif not start:
            validator.unlink(missing_ok=True)
        received = 0
        try:
            out = open(part, "ab" if start else "wb")
        except OSError as exc:
            raise FetchError(f"cannot write {part}: {exc.strerror}") from exc
        with out:
            while block := response.read(CHUNK):
                try:
                    out.write(block)
                except OSError as exc:
                    raise FetchError(f"cannot write {part}: {exc.strerror}") from exc
                received += len(block)
    size = start + received
    if expected is not None and size != expected:
        if size > expected:
            part.unlink()
        raise BrokenTransfer(f"transfer broke off: {size:,} of {expected:,} bytes")
    return received


def _resume_point(
    response: http.client.HTTPResponse, part: Path, offset: int
) -> tuple[int, int | None]:
    """Where the body goes in the file (``offset`` on a resumed 206, else 0), and its total size."""
    if response.status == 206:
        match = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            part.unlink(missing_ok=True)
            raise BrokenTransfer("the server resumed at another offset; restarting")
        return offset, int(match[2]) + 1 if match[3] == "*" else int(match[3])
    length = response.headers.get("Content-Length", "")
    return 0, int(length) if length.isdigit() else None


def _with_retries(url: str, config: FetchConfig, attempt: Callable[[], T]) -> T:
    """Call `attempt` until it succeeds, backing off exponentially on errors worth retrying."""
    tries = config.retries + 1
    unreachable = 0
    reason = ""
    for number in range(tries):
        if number:
            time.sleep(min(config.backoff_s * 2 ** (number - 1), MAX_BACKOFF_S))
        try:
            return attempt()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code < 500 and exc.code not in RETRIED_STATUS:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            reason = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            reason = _describe(exc.reason)
            unreachable += _is_unreachable(exc.reason)
        except (BrokenTransfer, OSError, http.client.HTTPException) as exc:
            reason = _describe(exc)
    if unreachable == tries:
        host = urllib.parse.urlsplit(url).netloc
        raise OfflineError(
            f"cannot reach {host} ({reason}): fetch needs the internet; "
            "ingest a local folder instead"
        )
    raise FetchError(f"{url}: gave up after {tries} tries; last: {reason}")


def _read(url: str, timeout: float) -> bytes:
    """A small document (a folder listing), whole."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _is_unreachable(reason: object) -> bool:
    """No DNS answer, connection refused, no route, or no answer to connect at all."""
    return isinstance(reason, (socket.gaierror, ConnectionRefusedError, TimeoutError)) or (
        isinstance(reason, OSError) and reason.errno in UNREACHABLE_ERRNOS
    )


def _is_not_found(exc: FetchError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, urllib.error.HTTPError) and cause.code == 404


def _member(bundle: Path, name: str) -> bytes:
    """The bytes of the bundle member called `name` (at any depth)."""
    with zipfile.ZipFile(bundle) as archive:
        for member in archive.namelist():
            if Path(member).name == name:
                return archive.read(member)
    raise FetchError(f"{bundle.name} holds no {name}: DEE2 may not have processed these runs")


def _write_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path, ".part") as part:
        part.write_bytes(data)


def _describe(exc: object) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _shown(head: bytes) -> str:
    return repr(head[:80].decode("utf-8", "replace"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
