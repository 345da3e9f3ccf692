"""Precomputed results from the R pipeline load into the same tables as degae's own."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

import warehouse
from degae_tools.cli import main
from tests.helpers import copy_warehouse
from tests.test_de_parity_r import _has_limma
from warehouse.connect import fetch_frame

R_TOPTABLE = """
suppressMessages(library(limma))
set.seed(1)
genes <- readLines("genes.txt")
y <- matrix(rnorm(length(genes) * 6, 5), ncol = 6, dimnames = list(genes, NULL))
y[1:20, 4:6] <- y[1:20, 4:6] + 3
group <- factor(c("A", "A", "A", "B", "B", "B"))
design <- model.matrix(~0 + group)
fit <- eBayes(contrasts.fit(lmFit(y, design), makeContrasts(groupB - groupA, levels = design)))
write.table(topTable(fit, number = Inf), "toptable.tsv", sep = "\\t", quote = FALSE)
"""


def first_contrast(db) -> str:
    con = warehouse.connect(db)
    (cid,) = con.sql("SELECT contrast_id FROM core.contrasts ORDER BY 1 LIMIT 1").fetchall()[0]
    con.close()
    return cid


@pytest.mark.skipif(not _has_limma(), reason="Rscript with limma is not installed")
def test_a_real_limma_toptable_export_loads(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    con = warehouse.connect(db)
    genes = fetch_frame(con, "SELECT gene_id FROM core.genes ORDER BY gene_index LIMIT 200")
    con.close()
    (tmp_path / "genes.txt").write_text("\n".join(genes["gene_id"].to_list() + ["NOT_A_GENE"]))
    (tmp_path / "tt.R").write_text(R_TOPTABLE)
    subprocess.run(["Rscript", "tt.R"], cwd=tmp_path, check=True, capture_output=True)
    contrast = first_contrast(db)
    result = CliRunner().invoke(
        main, ["import-de", str(tmp_path / "toptable.tsv"), "--contrast", contrast, "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    con = warehouse.connect(db)
    stored = fetch_frame(
        con,
        "SELECT count(*) AS n, min(adj_p_value) AS p FROM core.de_results WHERE contrast_id = ?",
        [contrast],
    )
    runs = con.sql("SELECT source, n_de FROM core.de_runs").fetchall()
    rejected = con.sql("SELECT reason, record FROM raw.rejected WHERE stage = 'ingest'").fetchall()
    con.close()
    assert stored["n"][0] == 200 and stored["p"][0] < 0.05
    lines = (tmp_path / "toptable.tsv").read_text().splitlines()[1:]
    rows = [line.split("\t") for line in lines]
    n_de = sum(1 for r in rows if float(r[5]) < 0.05 and r[0] != "NOT_A_GENE")
    assert runs == [("limma_export", n_de)] and n_de > 0
    assert ("unknown gene", "NOT_A_GENE") in rejected


def test_a_gofuncr_table_loads_and_unknown_terms_are_rejected(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    con = warehouse.connect(db)
    terms = [t for (t,) in con.sql("SELECT go_id FROM core.go_terms LIMIT 3").fetchall()]
    con.close()
    rows = [
        "ontology\tnode_id\tnode_name\traw_p_underrep\traw_p_overrep\tFWER_underrep\tFWER_overrep"
    ]
    for i, go_id in enumerate(terms + ["GO:9999999"]):
        rows.append(f"biological_process\t{go_id}\tterm {i}\t0.9\t0.00{i + 1}\t1\t0.0{i + 1}")
    path = tmp_path / "gofuncr.tsv"
    path.write_text("\n".join(rows) + "\n")
    contrast = first_contrast(db)
    result = CliRunner().invoke(
        main, ["import-go", str(path), "--contrast", contrast, "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    con = warehouse.connect(db)
    n = con.sql(
        "SELECT count(*) FROM core.go_enrichment WHERE contrast_id = ?", params=[contrast]
    ).fetchall()
    rejected = con.sql("SELECT record FROM raw.rejected WHERE reason LIKE 'GO ID%'").fetchall()
    con.close()
    assert n == [(3,)]
    assert rejected == [("GO:9999999",)]


def test_a_table_without_limma_columns_is_rejected_with_the_reason(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    path = tmp_path / "broken.tsv"
    path.write_text("gene\tfoo\nA\t1\n")
    result = CliRunner().invoke(
        main, ["import-de", str(path), "--contrast", first_contrast(db), "--db", str(db)]
    )
    assert result.exit_code == 2
    assert "ResultTableError" in result.output and "logFC" in result.output


def test_an_unknown_contrast_is_refused(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    path = tmp_path / "tt.tsv"
    path.write_text("ID\tlogFC\tAveExpr\tt\tP.Value\tadj.P.Val\tB\nG\t1\t1\t1\t0.1\t0.2\t-1\n")
    result = CliRunner().invoke(
        main, ["import-de", str(path), "--contrast", "GSE0:x-vs-y", "--db", str(db)]
    )
    assert result.exit_code == 2 and "unknown contrast" in result.output
