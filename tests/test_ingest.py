"""Ingest: a compendium folder becomes raw.* and core.* rows, idempotently, bad files recorded."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

import warehouse
from degae_tools.errors import DegaeError
from flows.ingest import ingest
from tests.helpers import REPO, checkout_env, cli_command, copy_warehouse
from warehouse.connect import fetch_one

TABLES = [
    "raw.dee2_runs",
    "raw.geo_samples",
    "raw.geo_characteristics",
    "raw.count_files",
    "raw.rejected",
    "core.genes",
    "core.datasets",
    "core.samples",
    "core.contrasts",
    "core.go_terms",
    "core.go_edges",
    "core.go_annotations",
]


def row_counts(db: Path) -> dict[str, int]:
    con = warehouse.connect(db)
    counts = {t: fetch_one(con, f"SELECT count(*) FROM {t}")[0] for t in TABLES}
    con.close()
    return counts


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = warehouse.connect(db)
    rows = con.sql(sql, params=params).fetchall()
    con.close()
    return rows


def test_ingest_fills_every_table(ingested):
    counts = row_counts(ingested)
    assert all(counts[t] > 0 for t in TABLES if t != "raw.rejected"), counts
    assert counts["core.genes"] == 600


def test_included_datasets_follow_the_study_criteria(ingested):
    reasons = dict(
        query(ingested, "SELECT exclusion_reason, count(*) FROM core.dataset_inclusion GROUP BY 1")
    )
    assert reasons[None] >= 15
    included = query(ingested, "SELECT gse, n_groups FROM core.included_datasets")
    assert all(n_groups >= 2 for _, n_groups in included)
    thin = query(
        ingested,
        "SELECT count(*) FROM core.included_contrasts WHERE len(runs_a) < 2 OR len(runs_b) < 2",
    )
    assert thin == [(0,)]


def test_contrasts_compare_each_group_with_the_control(ingested):
    rows = query(ingested, "SELECT contrast_id, gse, group_a, group_b FROM core.contrasts")
    for contrast_id, gse, group_a, group_b in rows:
        assert contrast_id.startswith(f"{gse}:")
        assert group_a != group_b


def test_a_second_ingest_changes_nothing(compendium, tmp_path):
    db = tmp_path / "w.duckdb"
    first = ingest(compendium, db)
    before = row_counts(db)
    second = ingest(compendium, db)
    assert first.loaded > 0 and first.rejected == 0
    assert second.loaded == 0 and second.skipped == first.loaded
    assert row_counts(db) == before


def test_garbled_files_are_rejected_and_the_rest_loads(compendium, tmp_path):
    source = tmp_path / "c"
    shutil.copytree(compendium, source)
    counts = sorted((source / "counts").glob("*_GeneCountMatrix.tsv.gz"))
    truncated = counts[0]
    truncated.write_bytes(truncated.read_bytes()[:200])
    series = sorted((source / "geo").glob("*_series_matrix.txt.gz"))
    series[0].write_bytes(b"this is not a series matrix\n")
    db = tmp_path / "w.duckdb"
    summary = ingest(source, db)
    assert summary.rejected == 2
    assert len(summary.errors) == 2
    assert any("DEE2CountsError" in e for e in summary.errors)
    assert any("GEOSeriesMatrixError" in e for e in summary.errors)
    rejected = query(db, "SELECT source FROM raw.rejected WHERE stage = 'ingest'")
    assert {Path(s).name for (s,) in rejected} >= {truncated.name, series[0].name}
    assert row_counts(db)["raw.count_files"] == len(counts) - 1 + len(
        list((source / "counts").glob("*.long.tsv.gz"))
    )


def test_unknown_gene_ids_are_recorded_not_loaded(compendium, tmp_path):
    source = tmp_path / "c"
    shutil.copytree(compendium, source)
    path = sorted((source / "counts").glob("*_GeneCountMatrix.tsv.gz"))[0]
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    fields = lines[1].split("\t")
    lines.append("\t".join(["ENSMUSG99999999999"] + fields[1:]))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    db = tmp_path / "w.duckdb"
    ingest(source, db)
    rows = query(db, "SELECT reason, record FROM raw.rejected WHERE source = ?", [str(path)])
    assert rows == [("unknown gene ID", "ENSMUSG99999999999")]
    assert query(db, "SELECT n_unknown_genes FROM raw.count_files WHERE n_unknown_genes > 0") == [
        (1,)
    ]


def test_the_real_dee2_download_loads_and_fails_qc(shared_data, tmp_path):
    import zipfile

    source = tmp_path / "dee2"
    zipfile.ZipFile(shared_data / "dee2" / "DEE_count_data.zip").extractall(source)
    db = tmp_path / "w.duckdb"
    summary = ingest(source, db)
    assert summary.rejected == 0
    runs = query(db, "SELECT srr, gse, gsm, qc_status FROM raw.dee2_runs ORDER BY srr")
    assert [r[0] for r in runs] == ["SRR363796", "SRR363797", "SRR363798", "SRR363799"]
    assert {r[1] for r in runs} == {"GSE33543"} and {r[3] for r in runs} == {"FAIL"}
    assert query(db, "SELECT count(*) FROM core.genes") == [(46739,)]


@pytest.mark.parametrize("mode", ["study"])
def test_study_mode_makes_one_first_value_versus_rest_contrast(compendium, tmp_path, mode):
    db = tmp_path / "w.duckdb"
    ingest(compendium, db, mode=mode)
    per_series = query(db, "SELECT gse, count(*) FROM core.contrasts GROUP BY gse")
    assert per_series and all(n == 1 for _, n in per_series)


def test_a_rejected_file_is_tried_again_once_it_can_load(compendium, tmp_path):
    source = tmp_path / "c"
    shutil.copytree(compendium, source)
    gene_info = source / "GeneInfo.tsv"
    kept = tmp_path / "GeneInfo.tsv"
    shutil.move(gene_info, kept)
    db = tmp_path / "w.duckdb"
    first = ingest(source, db)
    assert first.rejected > 0 and row_counts(db)["raw.count_files"] == 0
    shutil.move(kept, gene_info)
    second = ingest(source, db)
    assert second.rejected == 0
    assert row_counts(db)["raw.count_files"] == len(list((source / "counts").iterdir()))


def test_annotations_rejected_for_genes_not_yet_loaded_are_loaded_once_the_genes_arrive(
    compendium, ingested, tmp_path
):
    """GO files ingested before GeneInfo: every annotation row is an unknown gene. When the
    genes arrive the same annotation file (already loaded, so not read again as a new file) is
    retried, and the warehouse ends as if the order had been right."""
    go_first = tmp_path / "go_first"
    shutil.copytree(compendium / "go", go_first)
    db = tmp_path / "w.duckdb"
    ingest(go_first, db)
    assert row_counts(db)["core.go_annotations"] == 0
    unknown = "SELECT count(*) FROM raw.rejected WHERE reason = 'unknown gene'"
    assert query(db, unknown)[0][0] > 0
    summary = ingest(compendium, db)
    assert summary.retried == 1
    assert row_counts(db)["core.go_annotations"] == row_counts(ingested)["core.go_annotations"]
    assert query(db, unknown)[0][0] == query(ingested, unknown)[0][0]
    assert ingest(compendium, db).retried == 0  # nothing new: nothing retried


def test_a_folder_without_input_files_is_refused_before_the_warehouse_is_made(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "GSE1_series_matrix.txt.bz2").write_text("a name degae does not read")
    db = tmp_path / "w.duckdb"
    with pytest.raises(DegaeError, match=r"no file to ingest, it holds 1 file \(GSE1_series"):
        ingest(folder, db)
    assert not db.exists()


def test_a_refresh_of_a_folder_emptied_since_keeps_the_warehouse_and_warns(ingested, tmp_path):
    """A scheduled refresh must not fail every night because a download folder was cleared."""
    db = copy_warehouse(ingested, tmp_path)
    before = row_counts(db)
    (tmp_path / "emptied").mkdir()
    summary = ingest(tmp_path / "emptied", db)
    assert (summary.loaded, summary.rejected) == (0, 0)
    assert summary.warnings and "no file to ingest" in summary.warnings[0]
    assert "the warehouse is kept" in summary.warnings[0]
    assert row_counts(db) == before


def test_the_prefect_flow_reports_a_degae_error_in_one_line_without_a_traceback(tmp_path):
    """Prefect logs a failed run's exception; for degae's own errors it keeps only the line."""
    env = checkout_env(
        PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    (tmp_path / "empty").mkdir()
    command = cli_command("ingest", str(tmp_path / "empty"))
    done = subprocess.run(
        [*command, "--db", str(tmp_path / "w.duckdb")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Flow run" in output, "the flow must have run under Prefect"
    assert "error: " in done.stderr and "no file to ingest, it holds no input" in done.stderr
    assert "Traceback" not in output
