"""The `go` step: GO enrichment of every contrast with DE results and no current enrichment.

The ontology and annotations are read once and propagated (is_a and part_of, as GOfuncR);
contrasts sharing a tested-gene universe are enriched together with one sparse product.
Stored rows: every tested term with p_over below `thresholds.GO_STORED_P` (the FWER and FDR
columns say which survive correction; `core.enriched_terms` keeps FWER < `thresholds.GO_FWER`,
as the study did). Imported signatures (`core.signatures`) have scores, not p-values: their
candidates are their strongest genes up and down, enriched separately (`direction`), against the
genes they measured (`strongest_genes.StrongestGenes`); the compendium's rows are `both`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np
import polars as pl

from degae_tools import console
from degae_tools.enrichment import (
    EnrichmentConfig,
    GeneAnnotations,
    Ontology,
    enrich_batch,
    gene_sets,
)
from degae_tools.errors import NothingToDo
from degae_tools.steps.runs import (
    ChunkResult,
    Mapper,
    RunRow,
    StepSummary,
    chunked,
    serially,
    write_runs,
)
from degae_tools.strongest_genes import StrongestGenes, strongest_gene_sets
from warehouse import Query, Warehouse

PENDING = Query("go/pending")
DE_SIGNIFICANCE = Query("go/de_significance")
SIGNATURE_IDS = Query("go/signature_ids")
LOADED = Query("go/loaded")
RUN_COLUMNS = {
    "contrast_id": pl.Utf8,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "source": pl.Utf8,
    "n_de": pl.Int32,
    "n_terms_tested": pl.Int32,
    "n_enriched": pl.Int32,
    "config": pl.Utf8,
    "inputs_hash": pl.Utf8,
}


@dataclass
class GOSummary(StepSummary):
    """Contrasts enriched and skipped by one run, and the terms stored."""

    terms_stored: int = 0
    unmapped_annotations: int = 0


def load_annotations(wh: Warehouse, relations: tuple[str, ...]) -> GeneAnnotations:
    """The warehouse's ontology and direct annotations, propagated up `relations`."""
    with wh.session():
        terms = wh.frame("SELECT go_id, name, namespace, is_obsolete FROM core.go_terms")
        edges = wh.frame("SELECT child, parent, relation FROM core.go_edges")
        alt = wh.frame("SELECT alt_id, go_id FROM core.go_alt_ids")
        annotations = wh.frame("SELECT DISTINCT gene_index, go_id FROM core.go_annotations")
        n_genes = int(wh.scalar("SELECT coalesce(max(gene_index) + 1, 0) FROM core.genes"))
    ontology = Ontology(terms, edges, dict(zip(alt["alt_id"], alt["go_id"], strict=True)))
    return ontology.propagate(annotations, n_genes, relations)


def enrich_chunk(
    de: pl.DataFrame,
    annotations: GeneAnnotations,
    config: EnrichmentConfig,
    rule: StrongestGenes = StrongestGenes(),
) -> ChunkResult:
    """Enrichment of a chunk of contrasts (rows `contrast_id, gene_index, adj_p_value, score,
    signature`)."""
    result = ChunkResult()
    groups: dict[tuple[bytes, str], list[tuple[str, np.ndarray]]] = {}
    tested_of: dict[bytes, np.ndarray] = {}
    for (contrast_id,), rows in de.partition_by("contrast_id", as_dict=True).items():
        sets, tested, reason = candidate_sets(rows, annotations.n_genes, config, rule)
        if not sets:
            result.runs.append(RunRow(contrast_id, "skipped", reason, n_de=0))
            continue
        key = np.packbits(tested).tobytes()
        for direction, candidates in sets.items():
            groups.setdefault((key, direction), []).append((contrast_id, candidates))
        tested_of[key] = tested
    for (key, direction), members in groups.items():
        result.extend(_enrich_universe(members, tested_of[key], annotations, config, direction))
    result.runs = _one_run_per_contrast(result.runs)
    return result


def candidate_sets(
    rows: pl.DataFrame, n_genes: int, config: EnrichmentConfig, rule: StrongestGenes
) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """A contrast's candidate masks by direction, its tested mask, and why it has none: an
    imported signature's strongest genes up and down, or a compendium contrast's DE genes."""
    if "signature" in rows.columns and rows["signature"][0]:
        sets, tested = strongest_gene_sets(rows, n_genes, rule)
        return sets, tested, f"no gene with |score| >= {rule.signature_min_score}"
    candidates, tested = gene_sets(rows, n_genes, config)
    sets = {"both": candidates} if candidates.any() else {}
    return sets, tested, f"no DE genes at adj.P.Val < {config.candidate_p}"


def _enrich_universe(members, tested, annotations, config, direction) -> ChunkResult:
    """One sparse product for the candidate sets that share a tested-gene universe."""
    ids = [m[0] for m in members]
    table = enrich_batch(
        np.stack([m[1] for m in members]), tested, annotations, config, contrast_ids=ids
    ).with_columns(pl.lit(direction).alias("direction"))
    counts = dict(zip(*np.unique(table["contrast_id"].to_numpy(), return_counts=True), strict=True))
    runs = [
        RunRow(cid, "done", None, n_de=int(mask.sum()), n_enriched=int(counts.get(cid, 0)))
        for cid, mask in members
    ]
    return ChunkResult([table], runs)


def _one_run_per_contrast(runs: list[RunRow]) -> list[RunRow]:
    """A signature's up and down sets as one run row: their candidates and terms added up."""
    merged: dict[str, RunRow] = {}
    for r in runs:
        if r.contrast_id in merged and r.status == "done":
            first = merged[r.contrast_id]
            r = replace(first, n_de=first.n_de + r.n_de, n_enriched=first.n_enriched + r.n_enriched)
        merged[r.contrast_id] = r
    return list(merged.values())


def stored_config(config: EnrichmentConfig) -> EnrichmentConfig:
    """The config as run: `fwer_over` stores every term below GO_STORED_P (`p_over`) and lets
    the views apply the FWER, so the stored rows answer both questions."""
    return replace(config, keep="p_over") if config.keep == "fwer_over" else config


@dataclass(frozen=True)
class Pending:
    """Contrasts to enrich: each one's inputs hash, and the key its DE values are stored under."""

    hashes: dict[str, str]
    keys: dict[str, int]

    def key_chunks(self, size: int) -> list[list[int]]:
        """The keys in the order their values were written, `size` at a time, so each chunk
        reads one run of core.de_values' row groups (see go/de_significance.sql)."""
        return chunked(sorted(self.keys[c] for c in self.hashes if c in self.keys), size)


def pending(wh: Warehouse, settings: str, rule: StrongestGenes) -> Pending:
    """Contrasts to enrich: the compendium's under the enrichment settings, imported
    signatures' under those and the strongest-genes rule."""
    signatures = {cid for (cid,) in wh.rows(SIGNATURE_IDS)}
    ruled = json.dumps({**json.loads(settings), **asdict(rule)})
    rows = [r for r in wh.rows(PENDING, {"settings": settings}) if r[0] not in signatures]
    if signatures:
        rows += [r for r in wh.rows(PENDING, {"settings": ruled}) if r[0] in signatures]
    rows.sort()
    keys = {c: k for c, _, k in rows if k is not None}
    return Pending(hashes={c: h for c, h, _ in rows}, keys=keys)


def nothing_to_enrich(
    wh: Warehouse,
    config: EnrichmentConfig = EnrichmentConfig(),
    rule: StrongestGenes = StrongestGenes(),
) -> None:
    """Raise NothingToDo, one line per cause, when enrichment would compute nothing: no GO
    ontology or no annotations loaded, no contrast with DE results, or all already enriched
    with these files and settings."""
    terms, annotations, with_results = wh.one(LOADED)
    causes = []
    if not terms:
        causes.append("no GO ontology loaded: ingest a folder with go-basic.obo(.gz)")
    if not annotations:
        causes.append("no GO annotations loaded: ingest a GAF or gene2go file (with the genes)")
    if not with_results:
        causes.append("no contrast has DE results: run `degae-tools de` (or import-de) first")
    elif not causes and not pending(wh, json.dumps(asdict(stored_config(config))), rule).hashes:
        causes.append(
            f"all {with_results} contrasts with DE results already have GO enrichment for the "
            "loaded GO files and these settings (other --n-randsets, --candidate-p... redo it)"
        )
    if causes:
        raise NothingToDo("\n  ".join(causes))


def run(
    wh: Warehouse,
    config: EnrichmentConfig = EnrichmentConfig(),
    chunk_size: int = 200,
    map_chunks: Mapper | None = None,
    rule: StrongestGenes = StrongestGenes(),
) -> GOSummary:
    """Enrich every pending contrast: new ones, and those whose DE fit, GO or gene files, or
    settings changed (`sql/queries/go/pending.sql`); finished, current ones are skipped.
    `map_chunks` runs `enrich_chunk` over the chunks, lazily: each chunk's DE rows are read
    just before it is enriched, so memory holds one chunk."""
    config = stored_config(config)
    settings = json.dumps(asdict(config))
    todo = pending(wh, settings, rule)
    hashes = todo.hashes
    annotations = load_annotations(wh, config.relations)
    summary = GOSummary(unmapped_annotations=annotations.unmapped.height)
    chunks = todo.key_chunks(chunk_size)
    de_rows = (
        wh.frame(DE_SIGNIFICANCE, {"keys": keys, "first": keys[0], "last": keys[-1]})
        for keys in chunks
    )
    fitted = (map_chunks or serially(enrich_chunk))(
        de_rows, annotations=annotations, config=config, rule=rule
    )
    tables = ("core.go_enrichment", "core.go_runs")
    for chunk in console.progress(fitted, len(chunks), "GO enrichment"):
        chunk.runs = [replace(r, inputs_hash=hashes[r.contrast_id]) for r in chunk.runs]
        write_runs(wh, "go", tables, chunk, RUN_COLUMNS, "degae", settings)
        summary.count(chunk.runs)
        summary.terms_stored += sum(r.n_enriched or 0 for r in chunk.runs if r.status == "done")
    return summary
