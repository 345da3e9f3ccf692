"""A tiny warehouse of synthetic DE and GO results, for tests that train or predict on it.

The log2FC matrix is low rank (a few latent factors times gene loadings, plus noise) and each GO
term's enrichment depends on one factor, so an autoencoder has structure to find and a predictor
has labels to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

import warehouse


def tiny_warehouse(
    path: Path,
    n_contrasts: int = 40,
    n_genes: int = 300,
    n_terms: int = 12,
    seed: int = 0,
    n_factors: int = 4,
    missing_fraction: float = 0.0,
) -> Path:
    """Write a migrated warehouse at `path` with `n_contrasts` contrasts over about 3 per series.

    `missing_fraction` leaves that share of (contrast, gene) pairs out of `core.de_results`.
    """
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_contrasts, n_factors))
    loadings = rng.normal(size=(n_factors, n_genes)) * (rng.random(n_genes) < 0.5)
    log_fc = factors @ loadings + 0.3 * rng.normal(size=(n_contrasts, n_genes))
    gses = [f"GSE{1000 + i // 3}" for i in range(n_contrasts)]
    contrast_ids = [f"{gse}:treated{i}-vs-control" for i, gse in enumerate(gses)]

    keep = rng.random((n_contrasts, n_genes)) >= missing_fraction
    rows, cols = np.nonzero(keep)
    de = pa.table(
        {
            "contrast_id": pa.array([contrast_ids[r] for r in rows]),
            "gene_index": pa.array(cols.astype(np.int32)),
            "log_fc": pa.array(log_fc[rows, cols]),
            "ave_expr": pa.array(np.full(len(rows), 5.0)),
            "t": pa.array(log_fc[rows, cols] * 3),
            "p_value": pa.array(np.full(len(rows), 0.01)),
            "adj_p_value": pa.array(np.full(len(rows), 0.04)),
            "b": pa.array(np.zeros(len(rows))),
        }
    )
    genes = pa.table(
        {
            "gene_index": pa.array(np.arange(n_genes, dtype=np.int32)),
            "gene_id": pa.array([f"ENSMUSG{g:011d}" for g in range(n_genes)]),
            "symbol": pa.array([f"Gene{g}" for g in range(n_genes)]),
        }
    )
    term_factor = np.arange(n_terms) % n_factors
    term_sign = np.where(np.arange(n_terms) // n_factors % 2 == 0, 1.0, -1.0)
    score = factors[:, term_factor] * term_sign
    fwer = np.where(score > 0.5, 0.001, 0.9)
    ci, ti = np.nonzero(np.ones_like(fwer, dtype=bool))
    go = pa.table(
        {
            "contrast_id": pa.array([contrast_ids[c] for c in ci]),
            "go_id": pa.array([f"GO:{t:07d}" for t in ti]),
            "n_de_in_term": pa.array(np.full(len(ci), 3, dtype=np.int32)),
            "n_in_term": pa.array(np.full(len(ci), 10, dtype=np.int32)),
            "n_de": pa.array(np.full(len(ci), 30, dtype=np.int32)),
            "n_tested": pa.array(np.full(len(ci), n_genes, dtype=np.int32)),
            "p_over": pa.array(fwer[ci, ti] / 10),
            "p_under": pa.array(np.full(len(ci), 0.5)),
            "fdr_over": pa.array(fwer[ci, ti] / 2),
            "fwer_over": pa.array(fwer[ci, ti]),
            "fwer_under": pa.array(np.full(len(ci), 1.0)),
        }
    )
    con = warehouse.connect(path, write=True)
    try:
        warehouse.migrate(con)
        con.register("genes_in", genes)
        con.register("de_in", de)
        con.register("go_in", go)
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO core.genes (gene_index, gene_id, symbol, species) "
            "SELECT gene_index, gene_id, symbol, 'mmusculus' FROM genes_in"
        )
        for cid, gse in zip(contrast_ids, gses, strict=True):
            con.execute(
                "INSERT INTO core.contrasts VALUES (?, ?, 'treatment', 'control', ?, ?, ?, [], "
                "[], 'degae')",
                [cid, gse, cid.split(":")[1].split("-vs-")[0], ["GSM1"], ["GSM2"]],
            )
            con.execute(
                "INSERT INTO core.de_runs (contrast_id, status, source, n_genes) "
                "VALUES (?, 'done', 'degae', ?)",
                [cid, n_genes],
            )
        con.execute(
            "INSERT INTO core.de_runs (contrast_id, status, reason, source) "
            "VALUES ('GSE9999:b-vs-a', 'skipped', 'no DE genes', 'degae')"
        )
        con.execute("INSERT INTO core.de_results SELECT * FROM de_in")
        con.execute(
            "INSERT INTO core.go_enrichment SELECT *, NULL::INTEGER[] AS leading_edge FROM go_in"
        )
        con.execute("COMMIT")
    finally:
        con.close()
    return path
