"""Ingest: a compendium folder becomes raw.* and core.* rows, idempotently, bad files recorded."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.errors import DegaeError
from degae_tools.steps.counts import read_counts
from degae_tools.steps.ingest import IngestConfig, ingest
from tests.helpers import REPO, checkout_env, cli_command, copy_warehouse, rows
from warehouse import Warehouse

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
    return {t: rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


def query(db: Path, sql: str, params: dict | None = None) -> list[tuple]:
    return rows(db, sql, params)


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
    found = query(ingested, "SELECT contrast_id, gse, group_a, group_b FROM core.contrasts")
    for contrast_id, gse, group_a, group_b in found:
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
    found = query(db, "SELECT reason, record FROM raw.rejected WHERE source = $p", {"p": str(path)})
    assert found == [("unknown gene ID", "ENSMUSG99999999999")]
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
    # nothing came out, and the summary says why: the series has no GEO matrix, its runs fail QC
    assert summary.included_contrasts == 0
    notes = "\n".join(summary.notes)
    assert "no contrast came out of 1 series" in notes
    assert "1 series (GSE33543): no GEO series matrix" in notes
    assert "1 series (GSE33543, 4 runs): no run passes DEE2 QC" in notes
    assert "FROM core.dataset_inclusion" in notes
    runs = query(db, "SELECT srr, gse, gsm, qc_status FROM raw.dee2_runs ORDER BY srr")
    assert [r[0] for r in runs] == ["SRR363796", "SRR363797", "SRR363798", "SRR363799"]
    assert {r[1] for r in runs} == {"GSE33543"} and {r[3] for r in runs} == {"FAIL"}
    assert query(db, "SELECT count(*) FROM core.genes") == [(46739,)]
    # and `de` after it says there is nothing to test, and why
    de = CliRunner().invoke(main, ["de", "--db", str(db), "--task-runner", "none", "--strict"])
    assert de.exit_code == 2, de.output
    assert de.output.startswith("nothing done: no included contrast to test")
    # every cause, not only the first, with the series named
    assert "  1 series (GSE33543): no GEO series matrix" in de.output
    assert "  1 series (GSE33543, 4 runs): no run passes DEE2 QC" in de.output


@pytest.mark.parametrize("mode", ["study"])
def test_study_mode_makes_one_first_value_versus_rest_contrast(compendium, tmp_path, mode):
    db = tmp_path / "w.duckdb"
    ingest(compendium, db, IngestConfig(mode=mode))
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
    # the count files' "no genes yet" rejections (and the annotations' unknown genes) are
    # resolved, not left open
    assert second.open_rejections.get("ingest", 0) == 0
    resolved = (
        "SELECT count(*) FROM raw.rejected WHERE stage = 'ingest' AND resolved_at IS NOT NULL"
    )
    assert query(db, resolved)[0][0] == first.rejected + first.rows_rejected


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
    unknown = "SELECT count(*) FROM core.open_rejections WHERE reason = 'unknown gene'"
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


def edit_gzip_lines(path: Path, edit) -> None:
    """Rewrite a gzipped text file with `edit(lines)` applied to its lines."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(edit(lines)) + "\n").encode()))


@pytest.fixture()
def one_series(compendium, tmp_path) -> Path:
    """GeneInfo.tsv and one wide count file: the smallest folder that loads counts."""
    folder = tmp_path / "one"
    (folder / "counts").mkdir(parents=True)
    shutil.copy(compendium / "GeneInfo.tsv", folder)
    wide = sorted((compendium / "counts").glob("*_GeneCountMatrix.tsv.gz"))[0]
    shutil.copy(wide, folder / "counts")
    return folder


def test_a_bad_count_row_rejects_that_line_and_the_rest_of_the_file_loads(one_series, tmp_path):
    path = next((one_series / "counts").iterdir())

    def damage(lines):
        lines[2] = lines[2].rsplit("\t", 1)[0] + "\t1.5"  # line 3: not an integer count
        lines[3] = lines[3].rsplit("\t", 1)[0]  # line 4: one field short
        lines[5] = lines[5].split("\t", 1)[0] + "\t-4\t" + lines[5].split("\t", 2)[2]  # line 6
        return lines

    edit_gzip_lines(path, damage)
    n_genes = len(gzip.decompress(path.read_bytes()).decode().splitlines()) - 1
    db = tmp_path / "w.duckdb"
    summary = ingest(one_series, db)
    assert (summary.loaded, summary.rejected, summary.rows_rejected) == (2, 0, 3)
    found = query(db, "SELECT line, reason FROM raw.rejected WHERE stage = 'ingest' ORDER BY line")
    assert [line for line, _ in found] == [3, 4, 6]
    assert "integer counts" in found[0][1] and "fields, got" in found[1][1]
    stored = query(db, "SELECT n_genes, n_runs FROM raw.count_files")[0]
    assert stored[0] == n_genes - 3
    gene_index, by_run = read_counts(
        db.parent / query(db, "SELECT parquet_path FROM raw.count_files")[0][0]
    )
    assert len(gene_index) == n_genes - 3 and len(by_run) == stored[1]


def test_a_tab_inside_one_gene_id_rejects_that_line_until_the_file_is_fixed(compendium, tmp_path):
    """GeneInfo with one broken line loads the other genes, and every count file loads with that
    one gene rejected; once GeneInfo is fixed, the gene arrives, the count files load again for
    it and every rejection is resolved."""
    source = tmp_path / "c"
    shutil.copytree(compendium, source)
    gene_info = source / "GeneInfo.tsv"
    good = gene_info.read_text()
    lines = good.splitlines()
    broken_id = lines[4].split("\t")[0]
    lines[4] = broken_id[:9] + "\t" + lines[4][9:]
    gene_info.write_text("\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    first = ingest(source, db)
    n_counts = len(list((source / "counts").iterdir()))
    assert first.rejected == 0 and row_counts(db)["core.genes"] == 599
    gene_rows = "SELECT line FROM core.open_rejections WHERE source = $p"
    assert query(db, gene_rows, {"p": str(gene_info)}) == [(5,)]
    unknown = "SELECT count(DISTINCT source) FROM core.open_rejections WHERE reason = $r"
    assert query(db, unknown, {"r": "unknown gene ID"})[0][0] == n_counts
    assert row_counts(db)["raw.count_files"] == n_counts and first.included_contrasts > 0
    gene_info.write_text(good)
    second = ingest(source, db)
    assert row_counts(db)["core.genes"] == 600 and second.retried >= n_counts  # + annotations
    assert second.open_rejections.get("ingest", 0) == 0
    assert query(db, "SELECT sum(n_unknown_genes) FROM raw.count_files")[0][0] == 0


def test_rejected_files_are_named_as_the_cause_and_counted_once(compendium, tmp_path):
    """A rejected series matrix is not 'no GEO series matrix', a truncated count file adds no
    second rejection about its groups, and the summary counts what core.open_rejections holds."""
    source = tmp_path / "c"
    shutil.copytree(compendium, source)
    truncated = sorted((source / "counts").glob("*_GeneCountMatrix.tsv.gz"))[1]
    truncated.write_bytes(truncated.read_bytes()[:300])
    matrix = sorted((source / "geo").glob("*_series_matrix.txt.gz"))[2]
    matrix.write_bytes(b"!Series_title\tbroken\n")
    db = tmp_path / "w.duckdb"
    summary = ingest(source, db)
    reasons = dict(query(db, "SELECT gse, exclusion_reason FROM core.dataset_inclusion"))
    assert reasons[truncated.name.split("_")[0]] == "count file rejected"
    assert reasons[matrix.name.split("_")[0]] == "GEO series matrix rejected"
    groups = "SELECT count(*) FROM core.open_rejections WHERE stage = 'groups' AND source = $gse"
    assert query(db, groups, {"gse": truncated.name.split("_")[0]}) == [(0,)]
    stages = dict(query(db, "SELECT stage, count(*) FROM core.open_rejections GROUP BY stage"))
    assert summary.open_rejections == stages and stages["ingest"] == 2


def test_strict_exits_2_when_input_was_rejected_and_says_where_to_look(one_series, tmp_path):
    path = next((one_series / "counts").iterdir())
    edit_gzip_lines(path, lambda lines: [*lines, "ENSMUSG99999999999" + lines[1][18:]])
    db = tmp_path / "w.duckdb"
    args = ["ingest", str(one_series), "--db", str(db), "--no-prefect"]
    relaxed = CliRunner().invoke(main, args)
    assert relaxed.exit_code == 0, relaxed.output
    assert "1 open rejections (ingest 1, groups 0): SELECT" in relaxed.output
    assert "FROM core.open_rejections" in relaxed.output
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 2, strict.output


def test_an_ontology_cycle_is_named_by_ingest_and_strict_exits_2(tmp_path):
    from tests.test_sources_go_files import CYCLIC_OBO

    (tmp_path / "src" / "go").mkdir(parents=True)
    (tmp_path / "src" / "go" / "cyclic.obo").write_text(CYCLIC_OBO)
    args = ["ingest", str(tmp_path / "src"), "--db", str(tmp_path / "w.duckdb"), "--no-prefect"]
    relaxed = CliRunner().invoke(main, args)
    assert relaxed.exit_code == 0, relaxed.output
    assert "2 open rejections (ingest 2, groups 0)" in relaxed.output
    assert "cyclic.obo line 13: is_a cycle GO:0000001 -> GO:0000003" in relaxed.output
    assert "cyclic.obo line 14: is_a self-loop: GO:0000002 is_a GO:0000002" in relaxed.output
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 2, strict.output


def test_a_run_listed_twice_in_the_metadata_keeps_its_first_line(one_series, tmp_path):
    cut = one_series / "mmusculus_metadata.tsv.cut"
    header = "SRR_accession\tQC_summary\tSRX_accession\tSRS_accession\tSRP_accession\t"
    rows = [
        "Experiment_title\tGEO_series",
        "SRR1\tPASS\tSRX1\tSRS1\tSRP1\tGSM1: a\tGSE1",
        "SRR2\tPASS\tSRX2\tSRS2\tSRP1\tGSM2: b\tGSE1",
        "SRR1\tFAIL(3)\tSRX1\tSRS1\tSRP1\tGSM1: a\tGSE1",
    ]
    cut.write_text(header + "\n".join(rows) + "\n")
    db = tmp_path / "w.duckdb"
    ingest(one_series, db)
    runs = query(db, "SELECT srr, qc_status FROM raw.dee2_runs ORDER BY srr")
    assert runs == [("SRR1", "PASS"), ("SRR2", "PASS")]
    found = query(
        db, "SELECT line, reason FROM core.open_rejections WHERE source = $p", {"p": str(cut)}
    )
    assert found == [(4, "run SRR1 listed again (first at line 2)")]


def test_a_count_file_ending_in_nul_bytes_is_rejected_whole(one_series, tmp_path):
    """A sparse or unfinished copy: the bytes after its last row are zeros, which the CSV
    reader would skip without a word."""
    packed = next((one_series / "counts").iterdir())
    plain = packed.with_suffix("")  # GSE…_GeneCountMatrix.tsv
    plain.write_bytes(gzip.decompress(packed.read_bytes()) + b"\0" * 10_000)
    packed.unlink()
    summary = ingest(one_series, tmp_path / "w.duckdb")
    assert summary.rejected == 1 and "ends in NUL bytes" in summary.errors[0]


def test_a_count_file_streams_in_batches_of_a_bounded_size(one_series, tmp_path, monkeypatch):
    from degae_tools.sources.dee2 import count_layout
    from degae_tools.steps import ingest_counts

    path = next((one_series / "counts").iterdir())
    layout = count_layout(path)
    db = tmp_path / "w.duckdb"
    ingest(one_series, db)
    n_genes = query(db, "SELECT n_genes FROM raw.count_files")[0][0]
    # Batches of about 50 rows: the file's 600 genes never sit in memory at once.
    monkeypatch.setattr(ingest_counts, "MIN_CHUNK_ROWS", 1)
    monkeypatch.setattr(ingest_counts, "CHUNK_BYTES", 50 * 8 * (len(layout.runs) + 1))
    with Warehouse.open(db) as wh:
        next_index = wh.scalar("SELECT max(gene_index) + 1 FROM core.genes")
        sizes = [c.table.num_rows for c in ingest_counts.read_wide(wh, path, layout, next_index)]
    assert len(sizes) >= n_genes // 50 and max(sizes) <= 50 * 1.1
    assert sum(sizes) == n_genes
