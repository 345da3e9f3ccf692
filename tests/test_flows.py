"""DE and GO flows over the warehouse: complete, resumable, faithful to the engines they call."""

from __future__ import annotations

import gzip

import numpy as np
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.limma import de_table
from degae_tools.steps.counts import read_counts
from degae_tools.steps.de import plan
from tests.helpers import copy_warehouse
from tests.helpers import run_de as differential
from tests.helpers import run_go as enrichment
from warehouse import Warehouse


def scalar(db, sql, params=None):
    with Warehouse.open(db) as wh:
        return wh.scalar(sql, params)


def test_every_included_contrast_gets_a_de_result(analysed):
    included = scalar(analysed, "SELECT count(*) FROM core.included_contrasts")
    done = scalar(analysed, "SELECT count(*) FROM core.de_runs WHERE status = 'done'")
    genes = scalar(analysed, "SELECT count(*) FROM core.genes")
    rows = scalar(analysed, "SELECT count(*) FROM core.de_results")
    assert done == included > 0
    assert rows == done * genes


def test_stored_results_equal_limma_on_the_series_counts(ingested, analysed):
    job = plan(Warehouse.open(ingested))[0]
    contrast = job.contrasts[0]
    contrast_id, runs_a, runs_b = contrast.contrast_id, contrast.runs_a, contrast.runs_b
    gene_index, by_run = read_counts(job.parquet_path)
    counts = np.stack([by_run[r] for r in runs_a + runs_b], axis=1)
    expected = de_table(counts, ["A"] * len(runs_a) + ["B"] * len(runs_b), ("B", "A"))
    with Warehouse.open(analysed) as wh:
        stored = wh.frame(
            "SELECT log_fc, t, adj_p_value FROM core.de_results WHERE contrast_id = $contrast "
            "ORDER BY gene_index",
            {"contrast": contrast_id},
        )
    order = np.argsort(gene_index)
    np.testing.assert_allclose(stored["log_fc"], expected["log_fc"].to_numpy()[order])
    np.testing.assert_allclose(stored["t"], expected["t"].to_numpy()[order])


def test_a_sample_sequenced_in_two_runs_is_their_summed_counts(analysed, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from degae_tools.steps.contrasts import rebuild

    db = copy_warehouse(analysed, tmp_path)
    wh = Warehouse.open(db, write=True)
    contrast_id, gse, runs_a, runs_b, parquet = wh.one(
        "SELECT c.contrast_id, c.gse, c.runs_a, c.runs_b, f.parquet_path "
        "FROM core.included_contrasts c JOIN raw.count_files f USING (gse) ORDER BY 1 LIMIT 1",
    )
    first = runs_a[0]
    gsm = wh.scalar("SELECT gsm FROM raw.dee2_runs WHERE srr = $srr", {"srr": first})
    path = db.parent / parquet
    table = pq.read_table(path)
    gene_index, by_run = read_counts(path)
    extra = (by_run[runs_b[0]] // 3).astype(by_run[first].dtype)  # a second lane, other depth
    # ingest's Parquet holds one count column per run: the second lane is one more column
    pq.write_table(table.append_column("SRR99999999", pa.array(extra)), path)
    with wh.transaction():
        wh.execute(
            "INSERT INTO raw.dee2_runs (srr, qc_status, gse, gsm) VALUES "
            "('SRR99999999', 'PASS', $gse, $gsm)",
            {"gse": gse, "gsm": gsm},
        )
        wh.execute(
            "UPDATE raw.count_files SET runs = list_append(runs, 'SRR99999999'), "
            "n_runs = n_runs + 1 WHERE gse = $gse",
            {"gse": gse},
        )
    rebuild(wh)
    runs_now = wh.scalar(
        "SELECT runs_a FROM core.contrasts WHERE contrast_id = $contrast", {"contrast": contrast_id}
    )
    wh.close()
    assert runs_now[0] == f"{first}+SRR99999999"
    assert differential(db).done >= 1  # the contrast's runs changed: refit
    counts = np.stack([by_run[first] + extra] + [by_run[r] for r in runs_a[1:] + runs_b], axis=1)
    expected = de_table(counts, ["A"] * len(runs_a) + ["B"] * len(runs_b), ("B", "A"))
    with Warehouse.open(db) as wh:
        stored = wh.frame(
            "SELECT log_fc FROM core.de_results WHERE contrast_id = $contrast ORDER BY gene_index",
            {"contrast": contrast_id},
        )
    order = np.argsort(gene_index)
    np.testing.assert_allclose(stored["log_fc"], expected["log_fc"].to_numpy()[order])


def test_a_rerun_skips_finished_contrasts(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    assert differential(db).done == 0
    assert enrichment(db).done == 0


def test_a_run_cut_short_resumes_where_it_stopped(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    total = sum(len(job.contrasts) for job in plan(Warehouse.open(db)))
    first_series = plan(Warehouse.open(db))[:2]
    from degae_tools.limma import DEConfig
    from degae_tools.steps.de import DESummary, fit_chunk, write_chunk

    partial = DESummary()
    with Warehouse.open(db, write=True) as wh:
        write_chunk(wh, fit_chunk(first_series, DEConfig()), DEConfig(), partial)
    rest = differential(db)
    assert partial.done + rest.done + rest.skipped == total


def test_enrichment_keeps_terms_with_their_de_genes(analysed):
    with Warehouse.open(analysed) as wh:
        rows = wh.frame(
            "SELECT e.contrast_id, e.go_id, e.n_de_in_term, e.leading_edge, e.p_over, e.fwer_over "
            "FROM core.go_enrichment e",
        )
        de_genes = wh.frame("SELECT contrast_id, gene_index FROM core.de_genes")
    assert rows.height > 0
    assert (rows["p_over"] < 0.05).all()
    assert ((rows["fwer_over"] >= 0) & (rows["fwer_over"] <= 1)).all()
    de_by_contrast = {
        c: set(g["gene_index"].to_list())
        for (c,), g in de_genes.partition_by("contrast_id", as_dict=True).items()
    }
    for row in rows.head(50).iter_rows(named=True):
        assert len(row["leading_edge"]) == row["n_de_in_term"]
        assert set(row["leading_edge"]) <= de_by_contrast[row["contrast_id"]]


def test_enriched_terms_recover_the_simulated_perturbations(analysed, compendium):
    import polars as pl

    truth = pl.read_csv(compendium / "ground_truth" / "perturbations.tsv", separator="\t")
    truth_pairs = set(
        truth.filter(pl.col("go_id").is_not_null()).select("gse", "go_id").unique().iter_rows()
    )
    with Warehouse.open(analysed) as wh:
        found = wh.rows(
            "SELECT DISTINCT split_part(contrast_id, ':', 1), go_id FROM core.enriched_terms"
        )
    hits = sum(1 for pair in found if pair in truth_pairs)
    assert hits / max(len(truth_pairs), 1) > 0.5


def test_cli_runs_de_and_enrich_as_prefect_flows(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["--json", "de", "--db", str(db)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["--json", "enrich", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert scalar(db, "SELECT count(*) FROM core.go_runs") > 0


def test_enrich_can_keep_the_studys_over_or_under_rule(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    differential(db)
    result = CliRunner().invoke(
        main,
        ["--json", "enrich", "--db", str(db), "--keep", "fwer_either", "--task-runner", "none"],
    )
    assert result.exit_code == 0, result.output
    outside = scalar(
        db,
        "SELECT count(*) FROM core.go_enrichment WHERE NOT (fwer_over < 0.05 OR fwer_under < 0.05)",
    )
    assert outside == 0 and scalar(db, "SELECT count(*) FROM core.go_enrichment") > 0


def test_new_annotations_or_other_go_settings_redo_the_enrichment(analysed, compendium, tmp_path):
    from dataclasses import replace

    from degae_tools.enrichment import EnrichmentConfig
    from degae_tools.steps.ingest import ingest

    db = copy_warehouse(analysed, tmp_path)
    contrasts = scalar(db, "SELECT count(*) FROM core.de_runs WHERE status = 'done'")
    fewer_sets = replace(EnrichmentConfig(), n_randsets=20)

    def redone(config=EnrichmentConfig()):
        summary = enrichment(db, config)
        return summary.done + summary.skipped

    assert redone() == 0
    assert redone(fewer_sets) == contrasts  # other settings: every contrast again
    assert redone(fewer_sets) == 0
    # a newer annotation file (one more annotation line) is loaded by ingest: every contrast again
    new = tmp_path / "update"
    new.mkdir()
    gaf = next((compendium / "go").glob("*.gaf*"))
    lines = gzip.open(gaf, "rt").read() if gaf.suffix == ".gz" else gaf.read_text()
    body = [line for line in lines.splitlines() if line and not line.startswith("!")]
    (new / "annotations_2.gaf").write_text(lines + body[0].replace("\tIEA\t", "\tIDA\t") + "\n")
    ingest(new, db)
    assert redone(fewer_sets) == contrasts
    assert redone(fewer_sets) == 0


def test_other_de_settings_refit_every_contrast(analysed, tmp_path):
    from degae_tools.limma import DEConfig

    db = copy_warehouse(analysed, tmp_path)
    assert differential(db).done == 0
    raw = differential(db, DEConfig(input="raw"))
    assert raw.done == scalar(db, "SELECT count(*) FROM core.included_contrasts")
    assert scalar(db, "SELECT count(*) FROM core.go_runs") == 0
