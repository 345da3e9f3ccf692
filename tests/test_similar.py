"""`similar`: a user's DE table against a collection's signatures, most similar and most
opposite first, over the genes both measured, every score kept in ml.similar."""

from __future__ import annotations

import gzip
import subprocess

import numpy as np
import polars as pl
import pytest

from degae_tools.signature_config import SignatureImport, SimilarConfig
from degae_tools.steps import signatures, similar
from tests.helpers import SHARED_DATA, checkout_env, cli_command, rows
from warehouse import Warehouse

N_GENES = 30


@pytest.fixture(scope="module")
def genes(tmp_path_factory) -> pl.DataFrame:
    """30 real human genes (Entrez, symbol, Ensembl) and the table they came from."""
    if not (SHARED_DATA / "human_gene_ids.tsv.gz").exists():
        pytest.skip("../shared/data/human_gene_ids.tsv.gz not present")
    table = pl.read_csv(SHARED_DATA / "human_gene_ids.tsv.gz", separator="\t", infer_schema=False)
    return (
        table.filter((pl.col("Ensembl") != "-") & (pl.col("GeneType") == "protein-coding"))
        .unique("GeneID", keep="first", maintain_order=True)
        .head(N_GENES)
    )


@pytest.fixture()
def warehouse_with_collection(tmp_path, genes):
    """A collection `tiny` of three signatures: SAME (the query's values), MIRROR (their
    negation) and OTHER (unrelated)."""
    rng = np.random.default_rng(11)
    query = rng.normal(0, 3, N_GENES)
    values = np.stack([query, -query, rng.normal(0, 3, N_GENES)])
    lines = ["\t".join(["perturbagen", *genes["GeneID"]])]
    lines += [
        "\t".join([name, *(f"{v:.6f}" for v in row)])
        for name, row in zip(["SAME", "MIRROR", "OTHER"], values, strict=True)
    ]
    matrix = tmp_path / "sigs.tsv"
    matrix.write_text("\n".join(lines) + "\n")
    table = tmp_path / "tiny_gene_ids.tsv"
    genes.write_csv(table, separator="\t")
    db = tmp_path / "w.duckdb"
    config = SignatureImport(collection="tiny", gene_table=str(table))
    with Warehouse.open(db, write=True, create=True) as wh:
        signatures.run(wh, matrix, config)
    return db, query


def deseq2_table(path, genes, stat, keep):
    """A DESeq2 results() table of the genes at `keep`, with `stat` as its Wald statistic."""
    lines = ["baseMean\tlog2FoldChange\tlfcSE\tstat\tpvalue\tpadj"]
    for i in keep:
        row_name = f"{genes['Ensembl'][i]} {genes['Symbol'][i]}"
        lines.append(f"{row_name}\t100\t{stat[i] / 4:.6f}\t0.25\t{stat[i]:.6f}\t0.01\t0.02")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_same_signature_ranks_first_and_its_mirror_last_over_the_shared_genes(
    tmp_path, genes, warehouse_with_collection
):
    db, query = warehouse_with_collection
    path = deseq2_table(tmp_path / "mine.deseq2.tsv", genes, query, keep=range(5, N_GENES))
    with Warehouse.open(db, write=True) as wh:
        result = similar.run(wh, path, SimilarConfig(collection="tiny"))
    most, least = result.ranked("spearman", 1)
    assert most.row(0, named=True) == pytest.approx(
        {"contrast_id": "tiny:SAME", "name": "SAME", "n_shared": 25, "cosine": 1.0, "spearman": 1.0}
    )
    assert least["contrast_id"][0] == "tiny:MIRROR" and least["cosine"][0] == pytest.approx(-1.0)
    assert result.query.description == "deseq2 stat"
    stored = rows(db, "SELECT contrast_id, space, value, n_shared FROM ml.similar ORDER BY 1")
    assert stored == [
        ("tiny:MIRROR", "genes", "z", 25),
        ("tiny:OTHER", "genes", "z", 25),
        ("tiny:SAME", "genes", "z", 25),
    ]


def test_running_it_again_replaces_its_rows_and_too_few_shared_genes_score_nothing(
    tmp_path, genes, warehouse_with_collection
):
    db, query = warehouse_with_collection
    path = deseq2_table(tmp_path / "few.deseq2.tsv", genes, query, keep=range(10))
    for min_shared in (5, 11):
        with Warehouse.open(db, write=True) as wh:
            similar.run(wh, path, SimilarConfig(collection="tiny", min_shared=min_shared))
    assert rows(db, "SELECT count(*), count(spearman), max(n_shared) FROM ml.similar") == [
        (3, 0, 10)
    ]


def test_the_command_prints_both_lists(tmp_path, genes, warehouse_with_collection):
    db, query = warehouse_with_collection
    path = deseq2_table(tmp_path / "mine.deseq2.tsv", genes, query, keep=range(N_GENES))
    result = subprocess.run(
        cli_command("similar", str(path), "--top", "1", "--db", str(db)),
        env=checkout_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    similar_part, opposite_part = result.stdout.split("most opposite")
    assert "tiny:SAME" in similar_part and "tiny:MIRROR" in opposite_part


def test_a_real_deseq2_table_against_real_l1000_signatures_shares_most_landmark_genes(tmp_path):
    l1000 = SHARED_DATA / "real" / "l1000_drugbank_consensus_signatures.tsv.gz"
    sars = SHARED_DATA / "real" / "deseq2" / "SRP253951_SARS-CoV-2-vs-mock.deseq2.tsv.gz"
    if not (l1000.exists() and sars.exists()):
        pytest.skip("../shared/data/real not present")
    subset = tmp_path / "l1000_head.tsv"
    with gzip.open(l1000, "rt") as fh:
        subset.write_text("".join(next(fh) for _ in range(31)))  # header and 30 signatures
    db = tmp_path / "w.duckdb"
    table = str(SHARED_DATA / "human_gene_ids.tsv.gz")
    with Warehouse.open(db, write=True, create=True) as wh:
        signatures.run(wh, subset, SignatureImport(collection="l1000", gene_table=table))
        result = similar.run(wh, sars, SimilarConfig(collection="l1000"))
    scores = result.scores
    assert scores.height == 30 and scores["n_shared"].min() > 900  # of 978 landmark genes
    assert scores["spearman"].is_between(-1, 1).all() and scores["cosine"].is_between(-1, 1).all()
