"""fetch: DEE2 and GEO downloads against a real HTTP server on 127.0.0.1 in DEE2's layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.errors import InputFileError, OfflineError
from degae_tools.sources.dee2 import iter_metadata, read_count_matrix
from degae_tools.sources.fetch import FetchConfig, fetch, read_series_file
from degae_tools.sources.simulate import SimulationConfig, simulate
from degae_tools.steps.ingest import ingest
from warehouse import Warehouse

ZIP_TIME = (2020, 4, 15, 6, 32, 0)
QC_METRICS = ("SequenceFormat", "QC_SUMMARY")


class Upstream:
    """DEE2 and GEO as files by URL path, ``request.sh`` zips built per query, scripted faults."""

    def __init__(self, files: dict[str, bytes], bundle: Callable[[list[str]], bytes]) -> None:
        self.files = files
        self.bundle = bundle
        self.errors: dict[str, int] = {}
        self.error_status: dict[str, int] = {}
        self.truncations: dict[str, int] = {}
        self.ranges = True
        self.log: list[tuple[str, str | None]] = []

    def requests(self, path: str) -> list[str | None]:
        """The Range header of every request for `path`, in order."""
        return [ranges for logged, ranges in self.log if logged == path]

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        self.log.append((url.path, request.headers.get("Range")))
        if self.errors.get(url.path, 0) > 0:
            self.errors[url.path] -= 1
            request.send_error(self.error_status.get(url.path, 500), "scripted failure")
            return
        if url.path == "/cgi-bin/request.sh":
            body = self.bundle(parse_qs(url.query).get("x", []))
        elif url.path in self.files:
            body = self.files[url.path]
        else:
            request.send_error(404)
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        start = 0
        asked = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range") or "")
        if asked and self.ranges and request.headers.get("If-Range") in (None, etag):
            start = int(asked[1])
            if start >= len(body):
                request.send_response(416)
                request.send_header("Content-Range", f"bytes */{len(body)}")
                request.end_headers()
                return
            request.send_response(206)
            request.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            request.send_response(200)
        request.send_header("Content-Length", str(len(body) - start))
        request.send_header("ETag", etag)
        request.end_headers()
        payload = body[start:]
        if self.truncations.get(url.path, 0) > 0:
            self.truncations[url.path] -= 1
            payload = payload[: len(payload) // 2]
        request.wfile.write(payload)


@pytest.fixture
def serve() -> Iterator[Callable[[Upstream], str]]:
    """Start an HTTP server for an Upstream on a free port; returns its base URL."""
    servers = []

    def start(upstream: Upstream) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.answer(self)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 4-series simulated mouse compendium: what the fake DEE2 and GEO serve."""
    out = tmp_path_factory.mktemp("upstream")
    simulate(out, SimulationConfig(datasets=4, genes=300, go_terms=30, seed=11))
    return out


def series_of(source: Path) -> list[str]:
    return sorted(p.name.split("_")[0] for p in (source / "geo").glob("*_series_matrix.txt.gz"))


def geo_path(gse: str, name: str = "") -> str:
    stub = re.sub(r"\d{1,3}$", "nnn", gse)
    return f"/geo/series/{stub}/{gse}/matrix/{name or gse + '_series_matrix.txt.gz'}"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip like DEE2's, with fixed timestamps so the same query always gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), data)
    return buffer.getvalue()


def dee2_from(source: Path) -> Upstream:
    """DEE2 (metadata + request.sh) and GEO serving the simulated compendium."""
    gene_info = (source / "GeneInfo.tsv").read_bytes()
    genes = [line.split("\t", 1)[0] for line in gene_info.decode().splitlines()[1:]]
    counts: dict[str, dict[str, int]] = {}
    for path in sorted((source / "counts").iterdir()):
        matrix = read_count_matrix(path)
        for j, run in enumerate(matrix.runs):
            counts[run] = dict(zip(matrix.gene_ids, matrix.counts[:, j].tolist(), strict=True))
    metadata = (source / "mmusculus_metadata.tsv.cut").read_bytes()
    rows = {line.split("\t", 1)[0]: line for line in metadata.decode().splitlines()[1:]}

    def bundle(runs: list[str]) -> bytes:
        present = [run for run in runs if run in counts]
        matrix = ["\t".join(["GeneID", *present])] + [
            "\t".join([gene, *(str(counts[run].get(gene, 0)) for run in present)]) for gene in genes
        ]
        summary = ["SRR_accession\tQC_summary\tSRX_accession\tSRS_accession\tSRP_accession"]
        summary += ["\t".join(rows[run].split("\t")[:5]) for run in present]
        qc = ["\t".join(["SeqMetric2", *present])]
        qc += ["\t".join([metric, *("PASS" for _ in present)]) for metric in QC_METRICS]
        return zip_bytes(
            {
                "MetadataSummary.tsv": "\n".join(summary).encode() + b"\n",
                "GeneCountMatrix.tsv": "\n".join(matrix).encode() + b"\n",
                "QC_Matrix.tsv": "\n".join(qc).encode() + b"\n",
                "GeneInfo.tsv": gene_info,
                "logs/": b"",
            }
        )

    files = {"/metadata/mmusculus_metadata.tsv.cut": metadata}
    for gse in series_of(source):
        files[geo_path(gse)] = (source / "geo" / f"{gse}_series_matrix.txt.gz").read_bytes()
    return Upstream(files, bundle)


def config(base: str, **changes) -> FetchConfig:
    return FetchConfig(dee2_url=base, geo_url=base, backoff_s=0.0, timeout_s=10.0, **changes)


def runs_of(source: Path, gse: str) -> list[str]:
    runs = pl.concat(iter_metadata(source / "mmusculus_metadata.tsv.cut"))
    return sorted(runs.filter(pl.col("gse") == gse)["srr"])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_fetched_folder_ingests_into_the_warehouse(source, serve, tmp_path):
    upstream = dee2_from(source)
    series = series_of(source)
    summary = fetch(tmp_path / "out", config(serve(upstream), series=tuple(series)))
    assert summary.fetched == series and not summary.failed
    db = tmp_path / "w.duckdb"
    loaded = ingest(tmp_path / "out", db)
    assert loaded.rejected == 0
    with Warehouse.open(db) as wh:
        fetched_runs = wh.rows(
            "SELECT srr FROM raw.dee2_runs WHERE gse IN (SELECT gse FROM raw.count_files)"
        )
        count_files = wh.rows("SELECT gse, runs FROM raw.count_files ORDER BY gse")
    assert [gse for gse, _ in count_files] == series
    assert sum(len(runs) for _, runs in count_files) == summary.runs == len(fetched_runs)
    for gse, runs in count_files:
        assert sorted(runs) == runs_of(source, gse)


def test_runs_are_requested_in_batches_and_merged(source, serve, tmp_path):
    upstream = dee2_from(source)
    gse = series_of(source)[0]
    fetch(tmp_path, config(serve(upstream), series=(gse,), max_runs_per_request=2))
    n_runs = len(runs_of(source, gse))
    assert len(upstream.requests("/cgi-bin/request.sh")) == (n_runs + 1) // 2
    merged = read_count_matrix(tmp_path / "counts" / f"{gse}_GeneCountMatrix.tsv.gz")
    original = read_count_matrix(next((source / "counts").glob(f"{gse}*")))
    assert merged.runs == sorted(original.runs)
    order = [original.runs.index(run) for run in merged.runs]
    assert (merged.counts == original.counts[:, order]).all()


def test_a_second_fetch_downloads_nothing(source, serve, tmp_path):
    upstream = dee2_from(source)
    settings = config(serve(upstream), series=tuple(series_of(source)))
    fetch(tmp_path, settings)
    n_requests = len(upstream.log)
    again = fetch(tmp_path, settings)
    assert again.up_to_date == list(settings.series) and again.fetched == []
    assert len(upstream.log) == n_requests and again.bytes_downloaded == 0


def test_a_partial_download_is_resumed_with_range(source, serve, tmp_path):
    upstream = dee2_from(source)
    metadata = upstream.files["/metadata/mmusculus_metadata.tsv.cut"]
    (tmp_path / "dee2").mkdir()
    (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut.part").write_bytes(metadata[:1000])
    summary = fetch(tmp_path, config(serve(upstream)))
    assert upstream.requests("/metadata/mmusculus_metadata.tsv.cut") == ["bytes=1000-"]
    assert summary.bytes_downloaded == len(metadata) - 1000
    assert (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut").read_bytes() == metadata


def test_a_server_without_range_support_restarts_the_download(source, serve, tmp_path):
    upstream = dee2_from(source)
    upstream.ranges = False
    metadata = upstream.files["/metadata/mmusculus_metadata.tsv.cut"]
    (tmp_path / "dee2").mkdir()
    (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut.part").write_bytes(b"stale bytes")
    fetch(tmp_path, config(serve(upstream)))
    assert (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut").read_bytes() == metadata


def test_a_partial_file_of_a_changed_file_is_not_resumed(source, serve, tmp_path):
    upstream = dee2_from(source)
    metadata = upstream.files["/metadata/mmusculus_metadata.tsv.cut"]
    (tmp_path / "dee2").mkdir()
    (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut.part").write_bytes(b"SRR_accession\told")
    (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut.part.validator").write_text('"old-etag"')
    fetch(tmp_path, config(serve(upstream)))
    assert upstream.requests("/metadata/mmusculus_metadata.tsv.cut") == ["bytes=17-"]
    assert (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut").read_bytes() == metadata


def test_a_whole_partial_file_is_checked_and_moved_into_place(source, serve, tmp_path):
    upstream = dee2_from(source)
    metadata = upstream.files["/metadata/mmusculus_metadata.tsv.cut"]
    (tmp_path / "dee2").mkdir()
    (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut.part").write_bytes(metadata)
    summary = fetch(tmp_path, config(serve(upstream)))
    assert summary.metadata_downloaded and summary.bytes_downloaded == 0
    assert (tmp_path / "dee2" / "mmusculus_metadata.tsv.cut").read_bytes() == metadata


def test_server_errors_are_retried(source, serve, tmp_path):
    upstream = dee2_from(source)
    gse = series_of(source)[0]
    upstream.errors[geo_path(gse)] = 2
    summary = fetch(tmp_path, config(serve(upstream), series=(gse,)))
    assert summary.fetched == [gse]
    assert len(upstream.requests(geo_path(gse))) == 3


def test_a_refused_request_fails_its_series_without_retrying(source, serve, tmp_path):
    upstream = dee2_from(source)
    gse = series_of(source)[0]
    upstream.errors["/cgi-bin/request.sh"] = 5
    upstream.error_status["/cgi-bin/request.sh"] = 403
    summary = fetch(tmp_path, config(serve(upstream), series=(gse,)))
    assert summary.failed[gse].endswith(": HTTP 403 scripted failure")
    assert len(upstream.requests("/cgi-bin/request.sh")) == 1


def test_a_truncated_bundle_is_retried_from_where_it_broke(source, serve, tmp_path):
    upstream = dee2_from(source)
    gse = series_of(source)[0]
    upstream.truncations["/cgi-bin/request.sh"] = 1
    summary = fetch(tmp_path, config(serve(upstream), series=(gse,)))
    assert summary.fetched == [gse]
    first, second = upstream.requests("/cgi-bin/request.sh")
    assert first is None and second.startswith("bytes=")
    merged = read_count_matrix(tmp_path / "counts" / f"{gse}_GeneCountMatrix.tsv.gz")
    assert merged.runs == runs_of(source, gse)


def test_a_series_that_keeps_failing_is_reported_and_the_others_load(source, serve, tmp_path):
    upstream = dee2_from(source)
    broken, *others = series_of(source)
    upstream.truncations[geo_path(broken)] = 99
    upstream.ranges = False
    summary = fetch(tmp_path, config(serve(upstream), series=(broken, *others), retries=2))
    assert summary.fetched == others
    assert "transfer broke off" in summary.failed[broken]
    assert not (tmp_path / "geo" / f"{broken}_series_matrix.txt.gz").exists()
    assert not (tmp_path / "counts" / f"{broken}_GeneCountMatrix.tsv.gz").exists()
    assert len(upstream.requests(geo_path(broken))) == 3


def test_a_series_dee2_does_not_have_is_reported(source, serve, tmp_path):
    summary = fetch(tmp_path, config(serve(dee2_from(source)), series=("GSE99999999",)))
    assert summary.failed == {"GSE99999999": "no runs of GSE99999999 in mmusculus_metadata.tsv.cut"}


def test_a_series_without_a_geo_series_matrix_is_reported(source, serve, tmp_path):
    upstream = dee2_from(source)
    gse = series_of(source)[0]
    del upstream.files[geo_path(gse)]
    summary = fetch(tmp_path, config(serve(upstream), series=(gse,)))
    assert summary.failed[gse].startswith(f"GEO has no series matrix for {gse}")
    assert upstream.requests("/cgi-bin/request.sh") == []


def test_a_series_on_two_platforms_gets_both_series_matrices(source, serve, tmp_path):
    upstream = dee2_from(source)
    gse = series_of(source)[0]
    matrix = upstream.files.pop(geo_path(gse))
    names = [f"{gse}-GPL13112_series_matrix.txt.gz", f"{gse}-GPL17021_series_matrix.txt.gz"]
    upstream.files[geo_path(gse).rsplit("/", 1)[0] + "/"] = "".join(
        f'<a href="{name}">{name}</a>\n' for name in names
    ).encode()
    for name in names:
        upstream.files[geo_path(gse, name)] = matrix
    summary = fetch(tmp_path, config(serve(upstream), series=(gse,)))
    assert summary.fetched == [gse]
    assert sorted(p.name for p in (tmp_path / "geo").iterdir()) == names


def test_an_unreachable_server_gives_one_clear_message(tmp_path):
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(OfflineError) as caught:
        fetch(tmp_path, config(base, series=("GSE1",), retries=1))
    assert str(caught.value) == (
        f"cannot reach 127.0.0.1:{port} (Connection refused): fetch needs the internet; "
        "ingest a local folder instead"
    )


def test_the_cli_fetches_and_reports_offline_in_one_line(source, serve, tmp_path, monkeypatch):
    base = serve(dee2_from(source))
    gse = series_of(source)[0]
    runner = CliRunner()
    monkeypatch.setenv("DEGAE_DEE2_URL", base)
    monkeypatch.setenv("DEGAE_GEO_URL", base)
    ok = runner.invoke(main, ["--json", "fetch", str(tmp_path / "a"), "--series", gse])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "a" / "counts" / f"{gse}_GeneCountMatrix.tsv.gz").is_file()
    port = closed_port()
    monkeypatch.setenv("DEGAE_DEE2_URL", f"http://127.0.0.1:{port}")
    offline = runner.invoke(main, ["fetch", str(tmp_path / "b"), "--retries", "0"])
    assert offline.exit_code == 2
    assert offline.output.startswith(f"error: cannot reach 127.0.0.1:{port} (")
    assert offline.output.count("\n") == 1


def test_the_real_dee2_bundle_becomes_a_loadable_count_matrix(shared_data, serve, tmp_path):
    bundle = (shared_data / "dee2" / "DEE_count_data.zip").read_bytes()
    summary_rows = zipfile.ZipFile(io.BytesIO(bundle)).read("MetadataSummary.tsv").decode()
    cut = ["SRR_accession\tQC_summary\tSRX_accession\tSRS_accession\tSRP_accession"]
    cut[0] += "\tExperiment_title\tGEO_series"
    for line in summary_rows.splitlines()[1:]:
        srr, qc, srx, srs, srp, _gsm, gse, title = line.split("\t")
        cut.append("\t".join([srr, qc, srx, srs, srp, title, gse]))
    matrix = gzip.compress(b'!Series_geo_accession\t"GSE33543"\n!series_matrix_table_begin\n')
    upstream = Upstream(
        {
            "/metadata/celegans_metadata.tsv.cut": "\n".join(cut).encode() + b"\n",
            geo_path("GSE33543"): matrix,
        },
        lambda runs: bundle,
    )
    summary = fetch(tmp_path, config(serve(upstream), species="celegans", series=("GSE33543",)))
    assert summary.fetched == ["GSE33543"] and summary.runs == 4
    counts = read_count_matrix(tmp_path / "counts" / "GSE33543_GeneCountMatrix.tsv.gz")
    assert counts.counts.shape == (46739, 4)
    assert counts.runs == ["SRR363796", "SRR363797", "SRR363798", "SRR363799"]
    real = zipfile.ZipFile(io.BytesIO(bundle)).read("GeneInfo.tsv")
    assert (tmp_path / "GeneInfo.tsv").read_bytes() == real


def test_a_series_file_lists_one_accession_per_line(tmp_path):
    path = tmp_path / "series.txt"
    path.write_text("# from the study\nGSE100035\n\nGSE100037  # two runs\n")
    assert read_series_file(path) == ("GSE100035", "GSE100037")
    path.write_text("GSE1\nSRP009256\n")
    with pytest.raises(InputFileError, match=r"series.txt line 2: expected one GEO series"):
        read_series_file(path)
