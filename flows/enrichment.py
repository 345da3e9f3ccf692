"""Prefect flow: GO enrichment of every contrast with DE results and no enrichment yet.

The ontology and annotations are read once and propagated (is_a and part_of, as GOfuncR);
contrasts sharing a tested-gene universe are enriched together with one sparse product.
Stored rows: every tested term with p_over < 0.05 (the FWER and FDR columns say which survive
correction; `core.enriched_terms` keeps FWER < 0.05 as the study did).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
from prefect import flow, task
from prefect.context import FlowRunContext

import warehouse
from degae_tools import console
from degae_tools.enrichment import (
    EnrichmentConfig,
    GeneAnnotations,
    Ontology,
    enrich_batch,
    gene_sets,
)
from flows.differential import DESummary
from warehouse.connect import fetch_frame, fetch_one
from warehouse.migrate import read_query
from warehouse.results import RunRow, write_go


@dataclass
class GOSummary(DESummary):
    """Contrasts enriched and skipped by one run, and the terms stored."""

    terms_stored: int = 0
    unmapped_annotations: int = 0


def load_annotations(con, relations: tuple[str, ...]) -> GeneAnnotations:
    """The warehouse's ontology and direct annotations, propagated up `relations`."""
    terms = fetch_frame(con, "SELECT go_id, name, namespace, is_obsolete FROM core.go_terms")
    edges = fetch_frame(con, "SELECT child, parent, relation FROM core.go_edges")
    alt = fetch_frame(con, "SELECT alt_id, go_id FROM core.go_alt_ids")
    annotations = fetch_frame(con, "SELECT DISTINCT gene_index, go_id FROM core.go_annotations")
    n_genes = int(fetch_one(con, "SELECT coalesce(max(gene_index) + 1, 0) FROM core.genes")[0])
    ontology = Ontology(terms, edges, dict(zip(alt["alt_id"], alt["go_id"], strict=True)))
    return ontology.propagate(annotations, n_genes, relations)


@task(name="enrich-chunk")
def enrich_chunk(
    de: pl.DataFrame, annotations: GeneAnnotations, config: EnrichmentConfig
) -> tuple[list[pl.DataFrame], list[RunRow]]:
    """Enrichment of a chunk of contrasts (rows `contrast_id, gene_index, adj_p_value`)."""
    runs: list[RunRow] = []
    groups: dict[bytes, list[tuple[str, np.ndarray]]] = {}
    tested_of: dict[bytes, np.ndarray] = {}
    for (contrast_id,), rows in de.partition_by("contrast_id", as_dict=True).items():
        candidates, tested = gene_sets(rows, annotations.n_genes, config)
        if not candidates.any():
            reason = f"no DE genes at adj.P.Val < {config.candidate_p}"
            runs.append(RunRow(contrast_id, "skipped", reason, n_de=0))
            continue
        key = np.packbits(tested).tobytes()
        groups.setdefault(key, []).append((contrast_id, candidates))
        tested_of[key] = tested
    results = []
    for key, members in groups.items():
        ids = [m[0] for m in members]
        table = enrich_batch(
            np.stack([m[1] for m in members]), tested_of[key], annotations, config, contrast_ids=ids
        )
        counts = dict(
            zip(*np.unique(table["contrast_id"].to_numpy(), return_counts=True), strict=True)
        )
        for cid, mask in members:
            runs.append(
                RunRow(
                    cid,
                    "done",
                    None,
                    n_de=int(mask.sum()),
                    n_terms_tested=None,
                    n_enriched=int(counts.get(cid, 0)),
                )
            )
        results.append(table)
    return results, runs


def enrichment(
    db_path: Path, config: EnrichmentConfig = EnrichmentConfig(), chunk_size: int = 200
) -> GOSummary:
    """Enrich every pending contrast: new ones, and those whose DE fit, GO or gene files, or
    settings changed (`sql/queries/go_pending.sql`); finished, current ones are skipped."""
    config = replace(config, keep="p_over") if config.keep == "fwer_over" else config
    settings = json.dumps(asdict(config))
    con = warehouse.connect(db_path, write=True)
    warehouse.migrate(con)
    hashes = dict(con.sql(read_query("go/pending"), params=[settings]).fetchall())
    pending = list(hashes)
    annotations = load_annotations(con, config.relations)
    con.close()
    summary = GOSummary(unmapped_annotations=annotations.unmapped.height)
    chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
    in_flow = FlowRunContext.get() is not None
    for chunk in console.progress(chunks, len(chunks), "GO enrichment"):
        con = warehouse.connect(db_path)
        de = fetch_frame(con, read_query("go/de_significance"), [chunk])
        con.close()
        step = enrich_chunk if in_flow else enrich_chunk.fn
        results, runs = step(de, annotations, config)
        runs = [replace(r, inputs_hash=hashes[r.contrast_id]) for r in runs]
        con = warehouse.connect(db_path, write=True)
        try:
            write_go(con, results, runs, "degae", settings)
        finally:
            con.close()
        summary.count(runs)
        summary.terms_stored += sum(r.n_enriched or 0 for r in runs if r.status == "done")
    return summary


@flow(name="enrichment")
def enrichment_flow(
    db_path: str,
    candidate_p: float = 0.05,
    min_size: int = 5,
    max_size: int = 500,
    n_randsets: int = 100,
    seed: int = 0,
    keep: str = "fwer_over",
) -> dict:
    """GO over-representation (hypergeometric, BH FDR, GOfuncR-style FWER) for DE genes."""
    config = EnrichmentConfig(
        candidate_p=candidate_p,
        min_size=min_size,
        max_size=max_size,
        n_randsets=n_randsets,
        seed=seed,
        keep=keep,
    )
    return enrichment(Path(db_path), config).as_dict()
