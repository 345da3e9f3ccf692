"""Precomputed results from R load into the same tables as degae's own: limma topTable, DESeq2
results() and edgeR topTags tables (the format read from the header) as a compendium contrast's
DE results or as signatures of a collection, and GOfuncR tables as a contrast's enrichment."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.signature_config import DETableImport
from degae_tools.sources.de_tables import read_de_table
from degae_tools.steps.imports import import_de
from tests.helpers import SHARED_DATA, copy_warehouse, rows
from tests.test_de_parity_r import _has_limma
from warehouse import Warehouse

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

# Five genes as each format writes them (R's write.table: no header cell above the row names).
GENES = ["ENSG00000141510 TP53", "ENSG00000136997 MYC", "ENSG00000012048 BRCA1",
         "ENSG00000146648 EGFR", "ENSG00000171862 PTEN"]  # fmt: skip
TABLES = {
    "limma": (
        "logFC\tAveExpr\tt\tP.Value\tadj.P.Val\tB",
        ["2.0\t7.1\t9.5\t1e-06\t5e-06\t5.2", "-1.5\t6.0\t-6.1\t0.0001\t0.00025\t2.0",
         "0.2\t5.5\t0.8\t0.43\t0.54\t-6.0", "1.1\t8.0\t4.0\t0.002\t0.0033\t-1.0",
         "-0.1\t4.0\t-0.3\t0.76\t0.76\t-7.0"],
    ),
    "deseq2": (
        "baseMean\tlog2FoldChange\tlfcSE\tstat\tpvalue\tpadj",
        ["900\t2.0\t0.2\t10.0\t1e-23\t5e-23", "500\t-1.5\t0.25\t-6.0\t2e-09\t5e-09",
         "300\t0.2\t0.3\t0.67\t0.5\t0.62", "1200\t1.1\t0.3\t3.7\t0.0002\t0.00033",
         "2\t-0.1\t2.0\t-0.05\tNA\tNA"],
    ),
    "edger": (
        "logFC\tlogCPM\tLR\tPValue\tFDR",
        ["2.0\t7.1\t90\t1e-20\t5e-20", "-1.5\t6.0\t40\t1e-10\t2.5e-10",
         "0.2\t5.5\t0.5\t0.48\t0.6", "1.1\t8.0\t14\t0.0002\t0.00033",
         "-0.1\t4.0\t0.1\t0.75\t0.75"],
    ),
}  # fmt: skip


def write_table(path, fmt, quirk=True):
    """The format's table as write.table writes it; `quirk=False` names the row-name column."""
    header, lines = TABLES[fmt]
    first = header if quirk else f"gene\t{header}"
    body = [f"{gene}\t{line}" for gene, line in zip(GENES, lines, strict=True)]
    path.write_text("\n".join([first, *body]) + "\n")
    return path


def first_contrast(db) -> str:
    return rows(db, "SELECT contrast_id FROM core.contrasts ORDER BY 1 LIMIT 1")[0][0]


@pytest.mark.skipif(not _has_limma(), reason="Rscript with limma is not installed")
def test_a_real_limma_toptable_export_loads(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    genes = rows(db, "SELECT gene_id FROM core.genes ORDER BY gene_index LIMIT 200")
    (tmp_path / "genes.txt").write_text("\n".join([g for (g,) in genes] + ["NOT_A_GENE"]))
    (tmp_path / "tt.R").write_text(R_TOPTABLE)
    subprocess.run(["Rscript", "tt.R"], cwd=tmp_path, check=True, capture_output=True)
    contrast = first_contrast(db)
    result = CliRunner().invoke(
        main, ["import-de", str(tmp_path / "toptable.tsv"), "--contrast", contrast, "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    ((n, p),) = rows(
        db,
        "SELECT count(*) AS n, min(adj_p_value) AS p FROM core.de_results WHERE contrast_id = $c",
        {"c": contrast},
    )
    runs = rows(db, "SELECT source, n_de FROM core.de_runs")
    rejected = rows(db, "SELECT reason, record FROM raw.rejected WHERE stage = 'ingest'")
    assert n == 200 and p < 0.05
    lines = (tmp_path / "toptable.tsv").read_text().splitlines()[1:]
    table_rows = [line.split("\t") for line in lines]
    n_de = sum(1 for r in table_rows if float(r[5]) < 0.05 and r[0] != "NOT_A_GENE")
    assert runs == [("limma_export", n_de)] and n_de > 0
    assert ("unknown gene", "NOT_A_GENE") in rejected


def test_a_gofuncr_table_loads_and_unknown_terms_are_rejected(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    terms = [t for (t,) in rows(db, "SELECT go_id FROM core.go_terms LIMIT 3")]
    lines = [
        "ontology\tnode_id\tnode_name\traw_p_underrep\traw_p_overrep\tFWER_underrep\tFWER_overrep"
    ]
    for i, go_id in enumerate(terms + ["GO:9999999"]):
        lines.append(f"biological_process\t{go_id}\tterm {i}\t0.9\t0.00{i + 1}\t1\t0.0{i + 1}")
    path = tmp_path / "gofuncr.tsv"
    path.write_text("\n".join(lines) + "\n")
    contrast = first_contrast(db)
    result = CliRunner().invoke(
        main, ["import-go", str(path), "--contrast", contrast, "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    n = rows(db, "SELECT count(*) FROM core.go_enrichment WHERE contrast_id = $c", {"c": contrast})
    rejected = rows(db, "SELECT record FROM raw.rejected WHERE reason LIKE 'GO ID%'")
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


# --- the three formats, as signatures of a collection ------------------------------------------


def import_tables(db, *paths, collection="de_tables"):
    with Warehouse.open(db, write=True, create=True) as wh:
        return import_de(wh, tuple(paths), None, DETableImport(collection=collection))


@pytest.mark.parametrize(
    ("fmt", "filled"),
    [
        ("limma", ["log_fc", "ave_expr", "t", "z", "p_value", "adj_p_value", "b"]),
        ("deseq2", ["log_fc", "z", "p_value", "adj_p_value"]),
        ("edger", ["log_fc", "ave_expr", "z", "p_value", "adj_p_value"]),
    ],
)
def test_each_format_is_recognised_and_becomes_a_signature(tmp_path, fmt, filled):
    path = write_table(tmp_path / f"study_{fmt}.tsv", fmt)
    assert read_de_table(path).format == fmt
    db = tmp_path / "w.duckdb"
    (report,) = import_tables(db, path)
    assert (report.status, report.n_rows) == ("loaded", 5)
    stored = rows(
        db,
        "SELECT g.symbol, r.log_fc, r.z, r.adj_p_value FROM core.de_results r "
        "JOIN core.genes g USING (gene_index) WHERE r.contrast_id = $c ORDER BY r.log_fc DESC",
        {"c": f"de_tables:study_{fmt}"},
    )
    assert [s for s, *_ in stored] == ["TP53", "EGFR", "BRCA1", "PTEN", "MYC"]
    assert stored[0][2] > 3 and stored[-1][2] < -3  # z signed like the fold change
    (kinds,) = rows(db, "SELECT value_kinds FROM core.collections")[0]
    assert kinds == sorted(filled)
    assert rows(db, "SELECT n_de FROM core.de_runs") == [(3,)]


def test_deseq2s_short_header_reads_like_a_full_one_and_na_stays_missing(tmp_path):
    quirk = read_de_table(write_table(tmp_path / "quirk.tsv", "deseq2", quirk=True))
    full = read_de_table(write_table(tmp_path / "full.tsv", "deseq2", quirk=False))
    assert quirk.rows.equals(full.rows)
    assert quirk.rows["gene"][0] == "ENSG00000141510" and quirk.rows["symbol"][0] == "TP53"
    assert quirk.rows["p_value"].null_count() == 1 and quirk.rows["z"].null_count() == 0


def test_the_seven_real_deseq2_tables_load_as_they_are(tmp_path):
    tables = sorted((SHARED_DATA / "real" / "deseq2").glob("*.deseq2.tsv.gz"))
    if len(tables) != 7:
        pytest.skip("../shared/data/real/deseq2 not present")
    db = tmp_path / "w.duckdb"
    reports = import_tables(db, *tables)
    assert [r.status for r in reports] == ["loaded"] * 7
    for table in tables:
        read = read_de_table(table).rows.height
        stored = rows(
            db, "SELECT n_genes FROM core.signatures WHERE source_file = $f", {"f": str(table)}
        )
        rejected = rows(
            db, "SELECT count(*) FROM raw.rejected WHERE source = $f", {"f": str(table)}
        )
        assert stored[0][0] + rejected[0][0] == read  # every row stored, or recorded with a reason
    assert rows(db, "SELECT count(*) = count(DISTINCT gene_id) FROM core.genes") == [(True,)]
    assert import_tables(db, *tables)[0].status == "skipped"


def test_a_later_ingest_retry_leaves_an_imported_tables_unknown_genes_alone(ingested, tmp_path):
    from degae_tools.steps.ingest import retry_rejected_rows

    db = copy_warehouse(ingested, tmp_path)
    gene = rows(db, "SELECT gene_id FROM core.genes ORDER BY gene_index LIMIT 1")[0][0]
    path = tmp_path / "tt.tsv"
    path.write_text(
        "ID\tlogFC\tAveExpr\tt\tP.Value\tadj.P.Val\tB\n"
        f"{gene}\t1\t1\t1\t0.1\t0.2\t-1\nNOT_A_GENE\t1\t1\t1\t0.1\t0.2\t-1\n"
    )
    with Warehouse.open(db, write=True) as wh:
        (report,) = import_de(wh, (path,), first_contrast(db))
        assert (report.status, report.n_rejected) == ("loaded", 1)
        assert retry_rejected_rows(wh) == []  # ingest's loaders retry ingest's files only
    still_open = "SELECT count(*) FROM core.open_rejections WHERE source = $f"
    assert rows(db, still_open, {"f": str(path)}) == [(1,)]
