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

httpx does the transport. Every download streams into ``<name>.part``, resumes with an HTTP
``Range`` request (guarded by ``If-Range``) when the server honours it, else restarts; it is checked
against the announced size and for zip or gzip integrity, and only then renamed into place.
Connection errors, 408/429/5xx answers and broken transfers are retried with exponential backoff;
a host that never answered raises `OfflineError`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import ssl
import time
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx

from degae_tools.atomic import atomic_path
from degae_tools.errors import DegaeError, FetchError, InputFileError, OfflineError
from degae_tools.sources import file_sha256

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
CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")
UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
MANIFEST = "fetch.json"
BUNDLE_COUNTS = "GeneCountMatrix.tsv"
BUNDLE_GENES = "GeneInfo.tsv"
METADATA_HEADER = b"SRR_accession\t"
VALIDATOR_SUFFIX = ".validator"
# Files are stored byte for byte as served, so no content coding may come between.
HEADERS = {"User-Agent": "degae-tools-fetch", "Accept-Encoding": "identity"}
CHUNK = 1 << 16
MAX_BACKOFF_S = 60.0
# HTTP answers worth asking again: request timeout, too many requests, and every 5xx.
RETRIED_STATUS = {408, 429}


@dataclass(frozen=True)
class FetchConfig:
    """What to fetch and how hard to try; `degae-tools fetch` options map onto these fields.

    Without series only the species metadata is downloaded. The base URLs default to
    ``$DEGAE_DEE2_URL`` / ``$DEGAE_GEO_URL``, else the public servers.
    """

    species: str = field(
        default="mmusculus", metadata={"help": "DEE2 species.", "choices": SPECIES}
    )
    series: tuple[str, ...] = field(
        default=(), metadata={"help": "GEO series to fetch (repeatable).", "multiple": True}
    )
    max_runs_per_request: int = field(default=100, metadata={"help": "Runs per DEE2 request."})
    retries: int = field(default=4, metadata={"help": "Tries after the first."})
    backoff_s: float = field(
        default=1.0, metadata={"help": "First wait between tries (s).", "flag": "--backoff"}
    )
    timeout_s: float = field(
        default=60.0, metadata={"help": "Per request (s).", "flag": "--timeout"}
    )
    dee2_url: str = field(
        default_factory=lambda: os.environ.get("DEGAE_DEE2_URL", DEFAULT_DEE2_URL),
        metadata={
            "help": "DEE2's base URL.",
            "envvar": "DEGAE_DEE2_URL",
            "shown": DEFAULT_DEE2_URL,
        },
    )
    geo_url: str = field(
        default_factory=lambda: os.environ.get("DEGAE_GEO_URL", DEFAULT_GEO_URL),
        metadata={"help": "GEO's base URL.", "envvar": "DEGAE_GEO_URL", "shown": DEFAULT_GEO_URL},
    )
    refresh_metadata: bool = field(
        default=False, metadata={"help": "Download the species metadata again."}
    )

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


@dataclass(frozen=True)
class Job:
    """One fetch: its settings, the folder it fills, that folder's manifest and one HTTP client."""

    config: FetchConfig
    out: Path
    manifest: Manifest
    client: httpx.Client


@dataclass(frozen=True)
class Downloaded:
    """Files now in place and the bytes received for them."""

    paths: list[Path]
    n_bytes: int


@dataclass(frozen=True)
class FetchedSeries:
    """A series' bytes received and the runs DEE2 returned counts for."""

    n_bytes: int
    runs: list[str]


class BrokenTransfer(Exception):
    """A try another may fix: a 408, 429 or 5xx answer, or a short, damaged or mis-resumed body."""


class Refused(FetchError):
    """An HTTP error answer that asking again will not change (404, 403, ...)."""

    def __init__(self, url: str, response: httpx.Response) -> None:
        self.status = response.status_code
        super().__init__(f"{url}: HTTP {self.status} {response.reason_phrase}")


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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = FetchSummary(out_dir=str(out), species=config.species)
    with httpx.Client(headers=HEADERS, timeout=config.timeout_s, follow_redirects=True) as client:
        job = Job(config, out, Manifest.open(out), client)
        metadata = out / "dee2" / f"{config.species}_metadata.tsv.cut"
        url = metadata_url(config)
        if config.refresh_metadata or not job.manifest.has(metadata, url):
            summary.bytes_downloaded += download(job, url, metadata, check_metadata)
            job.manifest.record(metadata, url)
            summary.metadata_downloaded = True
        for gse, runs in series_runs(metadata, config.series).items():
            if not runs:
                summary.failed[gse] = f"no runs of {gse} in {metadata.name}"
                continue
            if job.manifest.series_done(gse, runs):
                summary.up_to_date.append(gse)
                continue
            try:
                fetched = fetch_series(job, gse, runs)
            except OfflineError:
                raise
            except FetchError as exc:
                summary.failed[gse] = str(exc)
                continue
            summary.fetched.append(gse)
            summary.bytes_downloaded += fetched.n_bytes
            summary.runs += len(fetched.runs)
    return summary


def series_runs(metadata: Path, series: tuple[str, ...]) -> dict[str, list[str]]:
    """Each series' runs (sorted, without repeats) as the species metadata lists them."""
    from degae_tools.sources.dee2 import iter_metadata

    runs: dict[str, set[str]] = {gse: set() for gse in series}
    for batch in iter_metadata(metadata) if series else ():
        for gse, srr in batch.filter(batch["gse"].is_in(series)).select("gse", "srr").iter_rows():
            runs[gse].add(srr)
    return {gse: sorted(found) for gse, found in runs.items()}


def fetch_series(job: Job, gse: str, runs: list[str]) -> FetchedSeries:
    """One series: its GEO series matrices, its DEE2 bundles, then the merged count matrix."""
    matrices = fetch_series_matrices(job, gse)
    bundles = fetch_bundles(job, gse, runs)
    genes = job.out / BUNDLE_GENES
    if not genes.exists():
        _write_atomically(genes, _member(bundles.paths[0], BUNDLE_GENES))
    counts = job.out / "counts" / f"{gse}_GeneCountMatrix.tsv.gz"
    returned = merge_counts(bundles.paths, counts)
    job.manifest.finish_series(gse, runs, returned, [counts, *matrices.paths])
    return FetchedSeries(matrices.n_bytes + bundles.n_bytes, returned)


def fetch_series_matrices(job: Job, gse: str) -> Downloaded:
    """`gse`'s series matrix, or one per platform when GEO splits it (listed in its folder)."""
    geo_dir = job.out / "geo"
    name = f"{gse}_series_matrix.txt.gz"
    url = series_matrix_url(job.config, gse, name)
    try:
        return Downloaded([geo_dir / name], download(job, url, geo_dir / name, check_gzip))
    except Refused as exc:
        if exc.status != 404:
            raise
    listing_url = series_matrix_url(job.config, gse)
    try:
        listing = _retrying(listing_url, job.config, lambda: _read(job.client, listing_url))
    except Refused as exc:
        if exc.status != 404:
            raise
        listing = b""
    pattern = rf'href="(?:[^"]*/)?({gse}-GPL[0-9]+_series_matrix\.txt\.gz)"'
    names = sorted(set(re.findall(pattern, listing.decode("utf-8", "replace"))))
    if not names:
        raise FetchError(f"GEO has no series matrix for {gse} (not at {listing_url}{name})")
    n_bytes = 0
    for platform_name in names:
        url = series_matrix_url(job.config, gse, platform_name)
        n_bytes += download(job, url, geo_dir / platform_name, check_gzip)
    return Downloaded([geo_dir / n for n in names], n_bytes)


def fetch_bundles(job: Job, gse: str, runs: list[str]) -> Downloaded:
    """DEE2's zips of `runs`, ``max_runs_per_request`` at a time; bundles of other batches go."""
    folder = job.out / "dee2" / gse
    bundles = []
    n_bytes = 0
    step = job.config.max_runs_per_request
    for batch in (runs[start : start + step] for start in range(0, len(runs), step)):
        bundle = folder / f"{batch[0]}-{batch[-1]}.zip"
        url = bundle_url(job.config, batch)
        if not job.manifest.has(bundle, url):
            n_bytes += download(job, url, bundle, check_zip)
            job.manifest.record(bundle, url)
        bundles.append(bundle)
    for stale in set(folder.glob("*.zip")) - set(bundles):
        stale.unlink()
    return Downloaded(bundles, n_bytes)


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


def download(job: Job, url: str, dest: Path, check: Callable[[Path], None] | None = None) -> int:
    """Fetch `url` into `dest` through ``dest.part`` (resumed, size- and `check`-ed, renamed).

    Returns the bytes received. Raises `OfflineError` when the host never answered and
    `FetchError` when the server refused or every try broke; `dest` is never left half written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    received = 0

    def attempt() -> None:
        nonlocal received
        received += _transfer(job.client, url, part)
        try:
            if check is not None:
                check(part)
        except (BrokenTransfer, FetchError):
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        part.with_name(part.name + VALIDATOR_SUFFIX).unlink(missing_ok=True)

    _retrying(url, job.config, attempt)
    return received


def check_metadata(path: Path) -> None:
    """A DEE2 metadata table starts with ``SRR_accession<TAB>``, not an HTML error page."""
    head = _head(path)
    if not head.startswith(METADATA_HEADER):
        raise FetchError(f"DEE2 sent something other than a metadata table: {_shown(head)}")


def check_zip(path: Path) -> None:
    """A whole zip: every member's CRC matches (`zipfile.ZipFile.testzip`)."""
    head = _head(path)
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
    head = _head(path)
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
        sha256 = file_sha256(path)
        self.files[self.key(path)] = {
            "url": url,
            "bytes": path.stat().st_size,
            "sha256": sha256,
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


def _transfer(client: httpx.Client, url: str, part: Path) -> int:
    """One GET into `part`, appending when the server resumes at its end; bytes received."""
    offset = part.stat().st_size if part.exists() else 0
    validator = part.with_name(part.name + VALIDATOR_SUFFIX)
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator.is_file():
            # RFC 9110 13.1.5: the rest of the file only if it has not changed, else all of it.
            headers["If-Range"] = validator.read_text(encoding="utf-8")
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and offset:
            return _whole_already(response, part, offset)
        _raise_for_status(url, response)
        start = _resume_offset(response, part, offset)
        tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if not start and tag:
            validator.write_text(tag, encoding="utf-8")
        elif not start:
            validator.unlink(missing_ok=True)
        return _receive(response, part, start)


def _whole_already(response: httpx.Response, part: Path, offset: int) -> int:
    """A 416 to our Range: the partial file is whole (nothing to receive), or not this file."""
    match = UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is not None and int(match[1]) == offset:
        return 0
    part.unlink()
    raise BrokenTransfer("the partial file does not fit the server's; restarting")


def _resume_offset(response: httpx.Response, part: Path, offset: int) -> int:
    """Where the body goes in `part`: at ``offset`` when the server resumed there, else at 0."""
    if response.status_code != 206:
        return 0
    match = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None or int(match[1]) != offset:
        part.unlink(missing_ok=True)
        raise BrokenTransfer("the server resumed at another offset; restarting")
    return offset


def _receive(response: httpx.Response, part: Path, start: int) -> int:
    """Stream the body into `part` from `start`; bytes received. A body cut short is a broken try
    (httpx checks it against ``Content-Length``) and leaves what came for the next to resume."""
    received = 0
    try:
        with open(part, "ab" if start else "wb") as out:
            # No chunk size: httpx would hold back a partial chunk when the transfer breaks,
            # and every byte kept is one the next try need not ask for again.
            for block in response.iter_raw():
                out.write(block)
                received += len(block)
    except httpx.TransportError as exc:
        size = f"{start + received:,} bytes"
        raise BrokenTransfer(f"transfer broke off after {size} ({_describe(exc)})") from exc
    except OSError as exc:
        raise FetchError(f"cannot write {part}: {exc.strerror}") from exc
    return received


def _retrying(url: str, config: FetchConfig, attempt: Callable[[], T]) -> T:
    """Call `attempt` until it succeeds, backing off exponentially on errors another try may fix."""
    tries = config.retries + 1
    unreachable = 0
    reason = ""
    for number in range(tries):
        if number:
            time.sleep(min(config.backoff_s * 2 ** (number - 1), MAX_BACKOFF_S))
        try:
            return attempt()
        except (BrokenTransfer, httpx.TransportError) as exc:
            reason = _describe(exc)
            unreachable += _is_unreachable(exc)
    if unreachable == tries:
        raise OfflineError(
            f"cannot reach {urllib.parse.urlsplit(url).netloc} ({reason}): "
            "fetch needs the internet; ingest a local folder instead"
        )
    raise FetchError(f"{url}: gave up after {tries} tries; last: {reason}")


def _raise_for_status(url: str, response: httpx.Response) -> None:
    """An error answer: `BrokenTransfer` when worth asking again (408, 429, 5xx), else `Refused`."""
    status = response.status_code
    if status >= 500 or status in RETRIED_STATUS:
        raise BrokenTransfer(f"HTTP {status} {response.reason_phrase}")
    if status >= 400:
        raise Refused(url, response)


def _read(client: httpx.Client, url: str) -> bytes:
    """A small document (a folder listing), whole."""
    response = client.get(url)
    _raise_for_status(url, response)
    return response.content


def _is_unreachable(exc: Exception) -> bool:
    """No connection: no DNS answer, refused, no route, no answer (a TLS failure is not one)."""
    return isinstance(exc, httpx.ConnectTimeout) or (
        isinstance(exc, httpx.ConnectError) and not isinstance(_os_cause(exc), ssl.SSLError)
    )


def _describe(exc: Exception) -> str:
    """Why a try failed in a few words: the system's reason for a network error, else the text."""
    cause = _os_cause(exc) if isinstance(exc, httpx.TransportError) else None
    if cause is not None and cause.strerror:
        return cause.strerror
    return str(exc) or type(exc).__name__


def _os_cause(exc: BaseException) -> OSError | None:
    """The operating-system error under httpx's (which wraps httpcore's, which wraps it)."""
    while not isinstance(exc, OSError) and (exc.__cause__ or exc.__context__):
        exc = exc.__cause__ or exc.__context__
    return exc if isinstance(exc, OSError) else None


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


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(200)


def _shown(head: bytes) -> str:
    return repr(head[:80].decode("utf-8", "replace"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
