"""Imported signatures: a wide matrix becomes a collection of contrasts on the warehouse's genes,
idempotently, with what did not map counted and recorded; GO labels come from each signature's
strongest genes whichever of ingest and import ran first."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from degae_tools.signature_config import SignatureImport
from degae_tools.steps import signatures
from degae_tools.strongest_genes import StrongestGenes, strongest_gene_sets
from tests.helpers import SHARED_DATA, checkout_env, cli_command, rows, run_go
from warehouse import Warehouse

REAL = SHARED_DATA / "real"
L1000 = REAL / "l1000_drugbank_consensus_signatures.tsv.gz"
N_GENES = 40


@dataclass(frozen=True)
class GeneTable:
    frame: pl.DataFrame
    path: str


@pytest.fixture(scope="module")
def gene_table(tmp_path_factory) -> GeneTable:
    """The first 40 protein-coding genes of the real NCBI table that have an Ensembl ID."""
    if not (SHARED_DATA / "human_gene_ids.tsv.gz").exists():
        pytest.skip("../shared/data/human_gene_ids.tsv.gz not present")
    table = pl.read_csv(SHARED_DATA / "human_gene_ids.tsv.gz", separator="\t", infer_schema=False)
    table = table.filter((pl.col("Ensembl") != "-") & (pl.col("GeneType") == "protein-coding"))
    table = table.unique("GeneID", keep="first", maintain_order=True).head(N_GENES)
    path = tmp_path_factory.mktemp("genes") / "tiny_gene_ids.tsv"
    table.write_csv(path, separator="\t")
    return GeneTable(table, str(path))


def write_matrix(path, genes, names, values, transpose=False):
    """A signature matrix as L1000's file has it (or its transpose)."""
    lines = []
    if transpose:
        lines.append("\t".join(["gene", *names]))
        lines += ["\t".join([g, *(f"{v:.3f}" for v in values[:, j])]) for j, g in enumerate(genes)]
    else:
        lines.append("\t".join(["perturbagen", *genes]))
        lines += [
            "\t".join([n, *(f"{v:.3f}" for v in row)]) for n, row in zip(names, values, strict=True)
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def matrix(tmp_path, gene_table):
    """Three signatures over the table's 40 genes and one Entrez ID no table knows; a fourth row
    has a word where a number belongs."""
    rng = np.random.default_rng(3)
    genes = gene_table.frame["GeneID"].to_list() + ["999999999"]
    values = rng.normal(0, 1, (3, len(genes)))
    path = write_matrix(tmp_path / "sigs.tsv", genes, ["DB1", "DB2", "DB3"], values)
    with path.open("a") as fh:
        fh.write("\t".join(["DB4", "oops", *["1"] * (len(genes) - 1)]) + "\n")
    return path, genes, values


def import_file(db, path, gene_table_path=None, **fields):
    config = SignatureImport(**{"collection": "tiny", "gene_table": gene_table_path, **fields})
    with Warehouse.open(db, write=True, create=True) as wh:
        return signatures.run(wh, path, config)


def test_a_matrix_becomes_one_contrast_per_signature_with_its_values_as_z(
    tmp_path, matrix, gene_table
):
    path, genes, values = matrix
    db = tmp_path / "w.duckdb"
    summary = import_file(db, path, gene_table.path)
    assert (summary.signatures, summary.genes_mapped, summary.genes_unmapped) == (3, 40, 1)
    stored = rows(
        db,
        "SELECT g.gene_id, r.z FROM core.de_results r JOIN core.genes g USING (gene_index) "
        "WHERE r.contrast_id = 'tiny:DB2' ORDER BY r.gene_index",
    )
    expected = dict(zip(gene_table.frame["Ensembl"], np.round(values[1, :40], 3), strict=True))
    assert {g: round(z, 3) for g, z in stored} == pytest.approx(expected, abs=1e-3)
    assert rows(db, "SELECT DISTINCT source, status FROM core.de_runs") == [("import:tiny", "done")]
    assert rows(
        db,
        "SELECT kind, value_kinds, score, species, n_rows, n_genes_mapped, n_genes_unmapped "
        "FROM core.collections",
    ) == [("signatures", ["z"], "z", "hsapiens", 3, 40, 1)]
    assert rows(db, "SELECT collection, count(*) FROM core.collection_contrasts GROUP BY 1") == [
        ("tiny", 3)
    ]


def test_unmapped_genes_and_bad_rows_are_recorded_with_file_and_line(tmp_path, matrix, gene_table):
    path, _, _ = matrix
    db = tmp_path / "w.duckdb"
    import_file(db, path, gene_table.path)
    rejected = rows(db, "SELECT source, line, reason FROM raw.rejected ORDER BY line")
    assert [(s, line) for s, line, _ in rejected] == [(str(path), 1), (str(path), 5)]
    assert "unmapped gene" in rejected[0][2] and "999999999" in rejected[0][2]
    assert "not a number in column" in rejected[1][2]


def test_the_same_file_again_changes_nothing_and_a_changed_signature_alone_is_rewritten(
    tmp_path, gene_table
):
    genes = gene_table.frame["GeneID"].to_list()
    table = gene_table.path
    values = np.arange(3 * len(genes), dtype=float).reshape(3, -1) / 10
    first = write_matrix(tmp_path / "a.tsv", genes, ["A", "B", "C"], values)
    db = tmp_path / "w.duckdb"
    assert import_file(db, first, table).written == 3
    before = rows(db, "SELECT contrast_id, inputs_hash FROM core.de_runs ORDER BY 1")
    assert import_file(db, first, table).status == "skipped"
    values[1, 0] = 99.0
    second = import_file(
        db, write_matrix(tmp_path / "b.tsv", genes, ["A", "B", "C"], values), table
    )
    assert (second.written, second.unchanged) == (1, 2)
    after = rows(db, "SELECT contrast_id, inputs_hash FROM core.de_runs ORDER BY 1")
    assert [a == b for a, b in zip(before, after, strict=True)] == [True, False, True]
    assert rows(db, "SELECT count(*) FROM core.de_results") == [(3 * len(genes),)]
    assert rows(db, "SELECT max(z) FROM core.de_results WHERE contrast_id = 'tiny:B'") == [(99.0,)]


def test_the_transpose_loads_the_same_values(tmp_path, gene_table):
    genes = gene_table.frame["GeneID"].to_list()
    table = gene_table.path
    values = np.random.default_rng(1).normal(size=(2, len(genes)))
    wide, tall = tmp_path / "wide.duckdb", tmp_path / "tall.duckdb"
    import_file(wide, write_matrix(tmp_path / "w.tsv", genes, ["A", "B"], values), table)
    transposed = write_matrix(tmp_path / "t.tsv", genes, ["A", "B"], values, transpose=True)
    import_file(tall, transposed, table, transpose=True)
    query = "SELECT contrast_id, gene_index, z FROM core.de_results ORDER BY 1, 2"
    assert rows(wide, query) == rows(tall, query)


def test_a_file_whose_genes_map_onto_nothing_is_refused_naming_the_fix(tmp_path, gene_table):
    path = write_matrix(tmp_path / "s.tsv", ["TP53", "MYC"], ["A"], np.ones((1, 2)))
    table = gene_table.path
    result = subprocess.run(
        cli_command("import-signatures", str(path), "--collection", "x", "--gene-id", "entrez",
                    "--gene-table", table, "--db", str(tmp_path / "w.duckdb")),
        env=checkout_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "s.tsv line 1" in result.stderr and "--gene-id" in result.stderr


def test_a_collection_keeps_its_value_kind(tmp_path, gene_table):
    genes = gene_table.frame["GeneID"].to_list()
    table = gene_table.path
    db = tmp_path / "w.duckdb"
    import_file(db, write_matrix(tmp_path / "a.tsv", genes, ["A"], np.ones((1, len(genes)))), table)
    with pytest.raises(Exception, match="import into another --collection"):
        path = write_matrix(tmp_path / "b.tsv", genes, ["B"], np.ones((1, len(genes))))
        import_file(db, path, table, value="t")


def test_l1000_entrez_columns_and_deseq2_ensembl_rows_land_on_the_same_genes(tmp_path):
    if not L1000.exists():
        pytest.skip("../shared/data/real not present")
    subset = tmp_path / "l1000_head.tsv"
    with gzip.open(L1000, "rt") as fh:
        subset.write_text("".join(next(fh) for _ in range(6)))  # header and 5 signatures
    db = tmp_path / "w.duckdb"
    summary = import_file(
        db, subset, str(SHARED_DATA / "human_gene_ids.tsv.gz"), collection="l1000"
    )
    assert summary.genes_mapped == 978 and summary.genes_unmapped == 0
    deseq2 = REAL / "deseq2" / "SRP253951_SARS-CoV-2-vs-mock.deseq2.tsv.gz"
    from degae_tools.steps.imports import import_de

    with Warehouse.open(db, write=True) as wh:
        (report,) = import_de(wh, (deseq2,))
    assert report.status == "loaded"
    shared = rows(
        db,
        "SELECT count(DISTINCT a.gene_index) FROM core.de_results a JOIN core.de_results b "
        "USING (gene_index) WHERE a.contrast_id = 'l1000:DB00014' "
        "AND b.contrast_id = 'de_tables:SRP253951_SARS-CoV-2-vs-mock'",
    )[0][0]
    # The DESeq2 table measured most landmark genes; each is one gene of core.genes.
    assert shared > 900
    assert rows(db, "SELECT count(*) = count(DISTINCT gene_id) FROM core.genes") == [(True,)]


def test_the_strongest_genes_rule_keeps_at_most_n_each_way_above_the_score():
    values = [5.0, 3.0, 2.0, 1.9, -2.0, -4.0, -0.5, 3.0]
    scores = pl.DataFrame({"gene_index": np.arange(8), "score": values})
    sets, tested = strongest_gene_sets(scores, 10, StrongestGenes(2.0, 2))
    assert np.flatnonzero(sets["up"]).tolist() == [0, 1]  # 3 and 3 tie: lower gene_index kept
    assert np.flatnonzero(sets["down"]).tolist() == [4, 5]
    assert tested.sum() == 8


# --- GO labels, whichever of ingest and import comes first -----------------------------------

OBO = """format-version: 1.2

[Term]
id: GO:0008150
name: biological_process
namespace: biological_process

[Term]
id: GO:0000001
name: up term
namespace: biological_process
is_a: GO:0008150

[Term]
id: GO:0000002
name: down term
namespace: biological_process
is_a: GO:0008150
"""


@pytest.fixture()
def go_folder(tmp_path, gene_table):
    """An ontology, gene2go rows (genes 0-9 in the up term, 10-19 in the down term, all in the
    root) and the gene table, as ingest reads them."""
    folder = tmp_path / "go"
    folder.mkdir()
    (folder / "tiny.obo").write_text(OBO)
    entrez = gene_table.frame["GeneID"].to_list()
    lines = ["#tax_id\tGeneID\tGO_ID\tEvidence\tQualifier\tGO_term\tPubMed\tCategory"]
    for i, gene in enumerate(entrez):
        term = "GO:0000001" if i < 10 else "GO:0000002" if i < 20 else "GO:0008150"
        lines.append(f"9606\t{gene}\t{term}\tIDA\t-\tterm\t-\tProcess")
    (folder / "gene2go_tiny").write_text("\n".join(lines) + "\n")
    shutil.copy(gene_table.path, folder)
    return folder


def signature_file(tmp_path, gene_table):
    """Two signatures whose strongest genes up are the up term's and down the down term's."""
    genes = gene_table.frame["GeneID"].to_list()
    values = np.random.default_rng(5).uniform(-1, 1, (2, len(genes)))
    values[:, :10] += 5
    values[:, 10:20] -= 5
    return write_matrix(tmp_path / "sigs.tsv", genes, ["S1", "S2"], values)


@pytest.mark.parametrize("order", ["import first", "ingest first"])
def test_signatures_get_go_labels_up_and_down_whichever_comes_first(
    tmp_path, gene_table, go_folder, order
):
    from degae_tools.steps.ingest import ingest

    db = tmp_path / "w.duckdb"
    path = signature_file(tmp_path, gene_table)
    if order == "import first":
        import_file(db, path, gene_table.path)
        ingest(go_folder, db)
    else:
        ingest(go_folder, db)
        summary = import_file(db, path)
        assert summary.gene_table.endswith("tiny_gene_ids.tsv")  # the one ingest loaded
    summary = run_go(db)
    assert summary.done == 2
    labels = rows(
        db,
        "SELECT contrast_id, go_id, direction, n_de_in_term FROM core.go_enrichment "
        "WHERE fwer_over < 0.05 ORDER BY 1, 2",
    )
    assert labels == [
        ("tiny:S1", "GO:0000001", "up", 10),
        ("tiny:S1", "GO:0000002", "down", 10),
        ("tiny:S2", "GO:0000001", "up", 10),
        ("tiny:S2", "GO:0000002", "down", 10),
    ]
    assert rows(db, "SELECT DISTINCT n_tested FROM core.go_enrichment") == [(N_GENES,)]


def test_an_older_warehouse_gets_the_direction_into_its_go_enrichment_key(tmp_path):
    import duckdb

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA core")
    con.execute(
        "CREATE TABLE core.go_enrichment (contrast_id VARCHAR NOT NULL, go_id VARCHAR NOT NULL, "
        "n_de_in_term INTEGER, n_in_term INTEGER, n_de INTEGER, n_tested INTEGER, p_over DOUBLE, "
        "p_under DOUBLE, fdr_over DOUBLE, fwer_over DOUBLE, fwer_under DOUBLE, "
        "leading_edge INTEGER[], PRIMARY KEY (contrast_id, go_id))"
    )
    con.execute(
        "INSERT INTO core.go_enrichment (contrast_id, go_id, p_over) VALUES ('c', 'G', 0.01)"
    )
    con.close()
    with Warehouse.open(db, write=True) as wh:
        wh.execute(
            "INSERT INTO core.go_enrichment (contrast_id, go_id, direction) "
            "VALUES ('s', 'G', 'up'), ('s', 'G', 'down')"
        )
    assert rows(
        db, "SELECT contrast_id, direction, p_over FROM core.go_enrichment ORDER BY 1, 2"
    ) == [
        ("c", "both", 0.01),
        ("s", "down", None),
        ("s", "up", None),
    ]
