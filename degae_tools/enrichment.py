"""The Gene Ontology as sparse matrices, and the GO enrichment test at compendium scale.

The test is GOfuncR's (the reference study's ``go_enrich``, hypergeometric): one-sided
over- and under-representation p-values of the DE genes among the tested genes, and
family-wise error rates from ``n_randsets`` random candidate sets of the same size drawn
from the tested genes. FWER of a term = fraction of random sets whose smallest p-value
over the tested terms of the term's namespace is at most the term's p-value (GOfuncR
treats the three GO domains as independent graphs; its ``refine()`` docs: "the same FWER
will correspond to different p-values" per domain).

degae differs from GOfuncR on purpose in two places, both options of the caller: the
background is the tested-gene mask as given (GOfuncR drops genes without annotations;
pass ``tested & annotations.annotated`` to reproduce it), and terms are filtered by
propagated size among tested genes (``min_size``/``max_size``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from scipy import sparse

from degae_tools.thresholds import DE_ADJ_P, GO_FWER, GO_STORED_P

RELATIONS = ("is_a", "part_of", "regulates", "negatively_regulates", "positively_regulates")
KeepRule = Literal["all", "p_over", "fdr_over", "fwer_over", "fwer_either"]

RESULT_SCHEMA = {
    "go_id": pl.String,
    "n_de_in_term": pl.Int32,
    "n_in_term": pl.Int32,
    "n_de": pl.Int32,
    "n_tested": pl.Int32,
    "p_over": pl.Float64,
    "p_under": pl.Float64,
    "fdr_over": pl.Float64,
    "fwer_over": pl.Float64,
    "fwer_under": pl.Float64,
    "leading_edge": pl.List(pl.Int32),
}


@dataclass(frozen=True)
class EnrichmentConfig:
    """GO enrichment settings; defaults are the reference study's GOfuncR run.

    ``relations`` are the edges annotations propagate along: GOfuncR (and goatools' default
    with part_of) propagate along is_a and part_of, never along the regulates family.
    ``n_randsets=0`` skips the FWER (NaN columns). ``keep`` chooses the rows returned:
    ``"fwer_over"`` (default; over-representation only, FWER < keep_p), ``"fwer_either"``
    (the study: FWER_overrep < keep_p OR FWER_underrep < keep_p), ``"fdr_over"``,
    ``"p_over"``, or ``"all"`` tested terms.
    """

    candidate_p: float = field(
        default=DE_ADJ_P, metadata={"help": "DE genes: adj.P.Val below this."}
    )
    min_size: int = field(default=5, metadata={"help": "Smallest term (tested genes)."})
    max_size: int = field(default=500, metadata={"help": "Largest term (tested genes)."})
    n_randsets: int = field(default=100, metadata={"help": "Random sets for the FWER."})
    relations: tuple[str, ...] = ("is_a", "part_of")
    keep: KeepRule = field(
        default="fwer_over",
        metadata={
            "help": f"Rows stored: fwer_over stores every term with p_over < {GO_STORED_P} "
            f"(labels use FWER < {GO_FWER}); fwer_either is the study's FWER over- or "
            f"under-representation < {GO_FWER}."
        },
    )
    keep_p: float = GO_FWER
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.relations) - set(RELATIONS)
        if unknown:
            raise ValueError(f"unknown GO relation(s) {sorted(unknown)}; expected {RELATIONS}")
        if self.keep not in KeepRule.__args__:
            raise ValueError(f"keep={self.keep!r}; expected one of {KeepRule.__args__}")
        if self.n_randsets < 0:
            raise ValueError(f"n_randsets={self.n_randsets}; expected 0 (no FWER) or more")
        if self.n_randsets == 0 and self.keep.startswith("fwer"):
            raise ValueError(f"keep={self.keep!r} needs random sets; n_randsets is 0")
        if not 0 <= self.min_size <= self.max_size:
            raise ValueError(
                f"min_size={self.min_size}, max_size={self.max_size}: need 0 <= min <= max"
            )


@dataclass(frozen=True)
class GeneAnnotations:
    """Propagated annotations: a genes × terms boolean matrix and its column labels.

    Only terms with at least one annotated gene are columns. ``unmapped`` lists the
    annotated GO IDs that were not used (``go_id, reason, n_genes``; reason ``obsolete``
    or ``unknown``), so a version mismatch between ontology and annotations is visible.
    """

    matrix: sparse.csr_matrix
    go_ids: np.ndarray
    namespaces: np.ndarray
    unmapped: pl.DataFrame

    @property
    def n_genes(self) -> int:
        """Rows of the matrix: the gene universe, ``core.genes.gene_index`` order."""
        return self.matrix.shape[0]

    @property
    def annotated(self) -> np.ndarray:
        """Mask of genes with at least one term (GOfuncR's background is tested & annotated)."""
        return np.diff(self.matrix.indptr) > 0

    def column_counts(self, genes: np.ndarray) -> np.ndarray:
        """Number of ``genes`` (a boolean mask) in each column, reading the fewer rows."""
        annotated = self.annotated
        inside, outside = genes & annotated, ~genes & annotated
        if inside.sum() <= outside.sum():
            return self._columns_of(np.flatnonzero(inside))
        return self._column_totals - self._columns_of(np.flatnonzero(outside))

    def _columns_of(self, rows: np.ndarray) -> np.ndarray:
        return np.bincount(self.matrix[rows].indices, minlength=self.matrix.shape[1])

    @cached_property
    def _column_totals(self) -> np.ndarray:
        return np.bincount(self.matrix.indices, minlength=self.matrix.shape[1])

    @cached_property
    def counts(self) -> sparse.csr_matrix:
        """The matrix as int32, the operand of every counting product (computed once)."""
        return self.matrix.astype(np.int32)

    @cached_property
    def go_series(self) -> pl.Series:
        """The column labels as a polars Series named ``go_id``."""
        return pl.Series("go_id", self.go_ids, dtype=pl.String)

    @cached_property
    def namespace_codes(self) -> np.ndarray:
        """The namespace of each column as a small integer (0, 1, 2 in name order)."""
        return np.unique(self.namespaces, return_inverse=True)[1]

    @cached_property
    def display_order(self) -> np.ndarray:
        """Columns sorted by namespace, then GO ID: the order terms are scored and reported."""
        return np.lexsort((self.go_ids, self.namespaces))

    def term_sizes(self, genes: np.ndarray | None = None) -> dict[str, int]:
        """Propagated size of every term, among ``genes`` (a boolean mask) if given."""
        matrix = self.matrix if genes is None else self.matrix[np.asarray(genes, dtype=bool)]
        return dict(zip(self.go_ids.tolist(), matrix.getnnz(axis=0).tolist(), strict=True))


class Ontology:
    """GO terms and edges with term × term ancestor closures as sparse matrices."""

    def __init__(
        self, terms: pl.DataFrame, edges: pl.DataFrame, alt_ids: Mapping[str, str] | None = None
    ) -> None:
        self.alt_ids = dict(alt_ids or {})
        self.terms = terms.select(
            "go_id", "name", "namespace", pl.col("is_obsolete").fill_null(False)
        )
        self.edges = edges.select("child", "parent", "relation")
        duplicated = self.terms.filter(pl.col("go_id").is_duplicated())["go_id"].unique()
        if len(duplicated):
            raise ValueError(f"duplicate GO term IDs: {duplicated.head(5).to_list()}")
        self.go_ids = self.terms["go_id"].to_numpy()
        self._index = self.terms.select("go_id", "is_obsolete").with_row_index("term")
        bad = self.edges.filter(~pl.col("relation").is_in(RELATIONS))
        if len(bad):
            raise ValueError(f"edge relation {bad['relation'][0]!r}; expected one of {RELATIONS}")
        self._edge_index = self._index_edges()
        self._closures: dict[tuple[str, ...], sparse.csr_matrix] = {}

    def _index_edges(self) -> pl.DataFrame:
        ids = self._index.select("go_id", "term")
        indexed = self.edges.join(
            ids.rename({"go_id": "child", "term": "child_term"}), on="child", how="left"
        ).join(ids.rename({"go_id": "parent", "term": "parent_term"}), on="parent", how="left")
        dangling = indexed.filter(pl.col("child_term").is_null() | pl.col("parent_term").is_null())
        if len(dangling):
            row = dangling.row(0, named=True)
            raise ValueError(
                f"{len(dangling)} edge(s) name a GO ID that is not a term, "
                f"first {row['child']} -{row['relation']}-> {row['parent']}"
            )
        return indexed

    @classmethod
    def from_obo(cls, obo: object) -> Ontology:
        """From ``sources.obo.read_obo``'s result (``terms``, ``edges``, ``alt_ids``)."""
        return cls(obo.terms, obo.edges, getattr(obo, "alt_ids", None))

    @property
    def n_terms(self) -> int:
        """Number of terms, obsolete ones included."""
        return len(self.terms)

    def ancestors_matrix(self, relations: Sequence[str] = ("is_a", "part_of")) -> sparse.csr_matrix:
        """Boolean term × term closure: ``[i, j]`` is True when j is i or an ancestor of i."""
        key = tuple(sorted(set(relations)))
        unknown = set(key) - set(RELATIONS)
        if unknown:
            raise ValueError(f"unknown GO relation(s) {sorted(unknown)}; expected {RELATIONS}")
        if key not in self._closures:
            self._closures[key] = self._closure(key)
        return self._closures[key]

    def _closure(self, relations: tuple[str, ...]) -> sparse.csr_matrix:
        chosen = self._edge_index.filter(pl.col("relation").is_in(relations))
        n = self.n_terms
        step = sparse.csr_matrix(
            (
                np.ones(len(chosen), dtype=np.int32),
                (chosen["child_term"].to_numpy(), chosen["parent_term"].to_numpy()),
            ),
            shape=(n, n),
        )
        closure = (sparse.identity(n, dtype=np.int32, format="csr") + step).tocsr()
        closure.data[:] = 1
        # Repeated squaring doubles the path length covered each round: log2(depth) products.
        while True:
            squared = (closure @ closure).tocsr()
            squared.data[:] = 1
            if squared.nnz == closure.nnz:
                break
            closure = squared
        return closure.astype(bool)

    def propagate(
        self,
        annotations: pl.DataFrame,
        n_genes: int,
        relations: Sequence[str] = ("is_a", "part_of"),
    ) -> GeneAnnotations:
        """Propagate direct ``gene_index, go_id`` annotations up ``relations`` to all ancestors.

        ``relations`` is ``EnrichmentConfig.relations`` in the enrichment flow.

        Secondary IDs (OBO ``alt_id``) count for their primary term; obsolete and unknown IDs
        are left out and listed in the result's ``unmapped``.
        """
        go_id = pl.col("go_id")
        if self.alt_ids:
            go_id = go_id.replace(self.alt_ids)
        pairs = annotations.select(pl.col("gene_index").cast(pl.Int64), go_id)
        out_of_range = pairs.filter(
            pl.col("gene_index").is_null()
            | (pl.col("gene_index") < 0)
            | (pl.col("gene_index") >= n_genes)
        )
        if len(out_of_range):
            raise ValueError(
                f"{len(out_of_range)} annotation(s) with gene_index outside 0..{n_genes - 1}, "
                f"first {out_of_range.row(0)}"
            )
        joined = pairs.join(self._index, on="go_id", how="left")
        used = joined.filter(pl.col("term").is_not_null() & ~pl.col("is_obsolete")).unique(
            ["gene_index", "term"]
        )
        direct = sparse.csr_matrix(
            (
                np.ones(len(used), dtype=np.int32),
                (used["gene_index"].to_numpy(), used["term"].to_numpy()),
            ),
            shape=(n_genes, self.n_terms),
        )
        closure = self.ancestors_matrix(relations)
        used_terms = np.unique(used["term"].to_numpy())
        columns = np.flatnonzero(np.bincount(closure[used_terms].indices, minlength=self.n_terms))
        propagated = (direct @ closure[:, columns].astype(np.int32)).tocsr()
        matrix = sparse.csr_matrix(
            (np.ones(propagated.nnz, dtype=bool), propagated.indices, propagated.indptr),
            shape=propagated.shape,
        )
        matrix.sort_indices()
        return GeneAnnotations(
            matrix=matrix,
            go_ids=self.go_ids[columns],
            namespaces=self.terms["namespace"].to_numpy()[columns],
            unmapped=_unmapped(joined),
        )


def _unmapped(joined: pl.DataFrame) -> pl.DataFrame:
    """Annotated IDs the ontology does not know or has made obsolete, with their gene counts."""
    return (
        joined.filter(pl.col("term").is_null() | pl.col("is_obsolete"))
        .with_columns(
            reason=pl.when(pl.col("term").is_null())
            .then(pl.lit("unknown"))
            .otherwise(pl.lit("obsolete"))
        )
        .group_by("go_id", "reason")
        .agg(n_genes=pl.col("gene_index").n_unique().cast(pl.Int64))
        .sort("go_id")
    )


def gene_sets(
    de_results: pl.DataFrame, n_genes: int, config: EnrichmentConfig = EnrichmentConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate and tested masks from one contrast's DE table (``gene_index, adj_p_value``)."""
    rows = de_results.filter(
        pl.col("adj_p_value").is_not_null() & pl.col("adj_p_value").is_not_nan()
    )
    tested = np.zeros(n_genes, dtype=bool)
    tested[rows["gene_index"].to_numpy()] = True
    candidates = np.zeros(n_genes, dtype=bool)
    de = rows.filter(pl.col("adj_p_value") < config.candidate_p)
    candidates[de["gene_index"].to_numpy()] = True
    return candidates, tested


def hypergeom_tails(
    n_universe: int,
    n_drawn: int,
    term_sizes: np.ndarray,
    max_k: int | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tables ``P(X >= k)`` and ``P(X <= k)``: rows = term_sizes, columns k = 0..max(max_k).

    X ~ Hypergeom(N=n_universe, K, n=n_drawn). ``max_k`` (one, or one per row) defaults to
    the largest possible k; cells beyond a row's own max_k may be NaN. Equals
    scipy.stats.hypergeom.sf(k-1, N, K, n) and .cdf(k, N, K, n) to ~1e-12 relative,
    vectorised (scipy evaluates ~40 µs per value).
    """
    N, n = int(n_universe), int(n_drawn)
    K = np.asarray(term_sizes, dtype=np.int64)
    possible = np.minimum(n, K)
    last = possible if max_k is None else np.minimum(possible, np.broadcast_to(max_k, K.shape))
    # Upper tails above the mean are summed up to ``reach``, 10 standard deviations (at
    # least 16) past the last k asked for, where the dropped terms are far below 1e-15 of
    # the sum (checked in _tails); below the mean they come from the lower tail.
    mean = n * K / max(N, 1)
    sd = np.sqrt(mean * (1 - K / max(N, 1)) * (N - n) / max(N - 1, 1))
    margin = np.where(last + 2 < mean, 0, np.maximum(16, np.ceil(10 * sd))).astype(np.int64)
    reach = np.minimum(possible, last + margin)
    over = np.full((len(K), int(last.max(initial=0)) + 1), np.nan)
    under = over.copy()
    # Rows are computed in a few groups of similar reach, so that a few wide rows (the
    # root terms) do not widen the whole table.
    group = np.searchsorted([16, 64, 256], reach)
    for rows in np.split(np.argsort(group), np.cumsum(np.bincount(group))[:-1]):
        if len(rows):
            group_over, group_under = _tails(N, n, K[rows], last[rows], int(reach[rows].max()))
            over[rows, : group_over.shape[1]] = group_over
            under[rows, : group_under.shape[1]] = group_under
    return over, under


def _tails(
    N: int, n: int, K: np.ndarray, last: np.ndarray, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """hypergeom_tails for k = 0..last (one per row), upper tails summed up to k = reach."""
    possible = np.minimum(n, K)
    last = np.minimum(possible, last)
    width = int(last.max(initial=0)) + 1
    reach = int(min(possible.max(initial=0), max(reach, width - 1)))
    # P(X >= k) is 1 - P(X <= k-1) while that is >= 0.5 (no cancellation), else the sum of
    # the upper tail up to ``reach``; rows whose dropped terms could exceed 1e-15 of that sum
    # (or 1e-300 absolute) at their own last k are summed over the whole support.
    pmf, ratio = _hypergeom_pmf(N, n, K, reach + 1)
    under = np.minimum(np.cumsum(pmf, axis=1), 1.0)
    below = np.concatenate([np.zeros((len(K), 1)), under[:, :-1]], axis=1)
    summed = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]
    over = np.minimum(np.where(below <= 0.5, 1.0 - below, summed), 1.0)
    k = np.arange(pmf.shape[1])[None, :]
    over[k < np.maximum(0, n + K - N)[:, None]] = 1.0
    under[k > possible[:, None]] = 1.0
    rows = np.arange(len(K))
    truncated = (possible > reach) & (below[rows, last] > 0.5)
    if truncated.any():
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # log-concave pmf: beyond the last column the terms fall at least geometrically
            dropped = np.where(ratio < 1, pmf[:, -1] * ratio / (1 - ratio), np.inf)
        kept = np.maximum(1e-15 * over[rows, last], 1e-300)
        redo = np.flatnonzero(truncated & ~(dropped <= kept))
        if len(redo):
            over_full, _ = _tails(N, n, K[redo], last[redo], int(possible[redo].max()))
            over[redo, :width] = over_full[:, :width]
    return over[:, :width], under[:, :width]


def _hypergeom_pmf(N: int, n: int, K: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """P(X = k) for k < width, and P(X = width) / P(X = width - 1), one row per K."""
    k = np.arange(width + 1, dtype=np.float64)[None, :]
    Kf = K[:, None].astype(np.float64)
    k_min = np.maximum(0, n + K - N)
    k_max = np.minimum(n, K)
    # log P(X = k_min) as a product of ratios (no large lgamma differences):
    # k_min = 0: C(N-n, K)/C(N, K) = prod_{j<K} (N-n-j)/(N-j);
    # k_min > 0: C(K, N-n)/C(N, N-n) = prod_{j<N-n} (K-j)/(N-j).
    j = np.arange(int(K.max(initial=0)), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_first = np.concatenate([[0.0], np.cumsum(np.log1p(-n / (N - j)))])[K]
        shifted = np.flatnonzero(k_min > 0)
        if len(shifted):
            jj = np.arange(N - n, dtype=np.float64)[None, :]
            log_first[shifted] = np.sum(np.log((Kf[shifted] - jj) / (N - jj)), axis=1)
        # log P(X = k+1) - log P(X = k)
        step = np.log((Kf - k) * (n - k)) - np.log((k + 1) * (N - Kf - n + k + 1))
    ratio = np.exp(step[:, width - 1])
    step = np.where((k >= k_min[:, None]) & (k < k_max[:, None]), step, 0.0)[:, :width]
    climb = np.concatenate([np.zeros((len(K), 1)), np.cumsum(step, axis=1)[:, :-1]], axis=1)
    k = k[:, :width]
    log_pmf = (
        log_first[:, None]
        + climb
        - np.take_along_axis(climb, np.minimum(k_min, width - 1)[:, None], axis=1)
    )
    support = (k >= k_min[:, None]) & (k <= k_max[:, None])
    return np.where(support, np.exp(np.where(support, log_pmf, 0.0)), 0.0), ratio


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH adjusted p-values along the last axis (R's ``p.adjust(method = "BH")``)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.shape[-1]
    if m == 0:
        return p.copy()
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * m / np.arange(1, m + 1)
    ranked = np.minimum(np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1], 1.0)
    adjusted = np.empty_like(ranked)
    np.put_along_axis(adjusted, order, ranked, axis=-1)
    return adjusted


def enrich(
    candidates: np.ndarray,
    tested: np.ndarray,
    annotations: GeneAnnotations,
    config: EnrichmentConfig = EnrichmentConfig(),
) -> pl.DataFrame:
    """GO enrichment of one DE gene set (boolean mask or gene_index array) among tested genes."""
    mask = _as_mask(candidates, annotations.n_genes, "candidates")
    table = enrich_batch(mask[None, :], tested, annotations, config)
    return pl.DataFrame(table.get_columns()[1:])


def enrich_batch(
    candidates: np.ndarray | sparse.spmatrix | sparse.sparray,
    tested: np.ndarray,
    annotations: GeneAnnotations,
    config: EnrichmentConfig = EnrichmentConfig(),
    contrast_ids: Sequence[str] | None = None,
) -> pl.DataFrame:
    """GO enrichment of many DE gene sets (contrasts × genes, boolean) sharing one universe.

    Row c of the result equals ``enrich(candidates[c], ...)`` with the same seed: random
    sets of size n are the first n genes of ``n_randsets`` shuffles of the tested genes,
    shared by all contrasts, so growing the sets costs one sparse product per new size.
    """
    n_genes = annotations.n_genes
    chosen = sparse.csr_matrix(candidates, dtype=bool)
    if chosen.shape[1] != n_genes:
        raise ValueError(f"candidates have shape {chosen.shape}; expected (contrasts, {n_genes})")
    n_contrasts = chosen.shape[0]
    ids = [str(i) for i in range(n_contrasts)] if contrast_ids is None else list(contrast_ids)
    if len(ids) != n_contrasts:
        raise ValueError(f"{len(ids)} contrast_ids for {n_contrasts} candidate rows")
    tested = _as_mask(tested, n_genes, "tested")
    chosen.sort_indices()
    untested = np.bincount(
        np.repeat(np.arange(n_contrasts), np.diff(chosen.indptr))[~tested[chosen.indices]],
        minlength=n_contrasts,
    )
    if untested.any():
        first = int(np.flatnonzero(untested)[0])
        raise ValueError(
            f"contrast {ids[first]}: {untested[first]} candidate gene(s) are not tested genes; "
            "candidates must be a subset of the tested mask"
        )
    frames = _Study(annotations, tested, config).run(chosen.astype(np.int32), ids)
    if not frames:
        return pl.DataFrame(schema={"contrast_id": pl.String, **RESULT_SCHEMA})
    return frames[0] if len(frames) == 1 else pl.concat(frames)


def _as_mask(genes: np.ndarray, n_genes: int, what: str) -> np.ndarray:
    genes = np.asarray(genes)
    if genes.dtype == bool:
        if genes.shape != (n_genes,):
            raise ValueError(f"{what} mask has shape {genes.shape}; expected ({n_genes},)")
        return genes
    if genes.size and (genes.min() < 0 or genes.max() >= n_genes):
        raise ValueError(f"{what} gene_index outside 0..{n_genes - 1}")
    mask = np.zeros(n_genes, dtype=bool)
    mask[genes.astype(np.int64)] = True
    return mask


class _Study:
    """One universe and its tested terms (sorted by namespace), scored for many gene sets."""

    def __init__(
        self, annotations: GeneAnnotations, tested: np.ndarray, config: EnrichmentConfig
    ) -> None:
        self.annotations, self.config = annotations, config
        self.universe = np.flatnonzero(tested)
        self.n_tested = len(self.universe)
        sizes = annotations.column_counts(tested)
        order = annotations.display_order
        eligible = (sizes[order] >= max(config.min_size, 1)) & (sizes[order] <= config.max_size)
        self.columns = order[eligible]
        self.position = np.full(len(sizes), -1, dtype=np.int64)
        self.position[self.columns] = np.arange(len(self.columns))
        self.n_terms = len(self.columns)
        self.go_series = annotations.go_series.gather(self.columns)
        self.sizes = sizes[self.columns]
        present = np.bincount(self.sizes) > 0
        self.unique_sizes = np.flatnonzero(present)
        self.size_row = (np.cumsum(present) - 1)[self.sizes]
        small = self.size_row.astype(np.uint16) if len(present) < 2**16 else self.size_row
        self.by_size = np.argsort(small, kind="stable")  # radix sort for 16-bit keys
        self.size_starts = np.flatnonzero(np.r_[True, np.diff(self.size_row[self.by_size]) > 0])
        new_namespace = np.diff(annotations.namespace_codes[self.columns], prepend=-1) != 0
        self.ns_starts = np.flatnonzero(new_namespace)
        self.ns_of_term = np.cumsum(new_namespace) - 1

    def run(self, chosen: sparse.csr_matrix, ids: list[str]) -> list[pl.DataFrame]:
        """Score every row of ``chosen`` (contrasts × genes); one frame per contrast."""
        n_terms, n_rand = self.n_terms, self.config.n_randsets
        set_sizes = np.diff(chosen.indptr)
        if n_terms == 0 or len(set_sizes) == 0:
            return []
        rng = np.random.default_rng(self.config.seed)
        distinct, group = np.unique(set_sizes, return_inverse=True)
        members = np.split(np.argsort(group, kind="stable"), np.cumsum(np.bincount(group))[:-1])
        orders = self.universe[_shuffled_prefixes(rng, n_rand, self.n_tested, int(distinct[-1]))]
        random_counts = np.zeros((n_rand, n_terms), dtype=np.int32)
        done = 0
        frames: dict[int, pl.DataFrame] = {}
        for size, rows in zip(distinct.tolist(), members, strict=True):
            if size > done:
                added = orders[:, done:size]
                growth = sparse.csr_matrix(
                    (
                        np.ones(added.size, dtype=np.int32),
                        (np.repeat(np.arange(n_rand), size - done), added.ravel()),
                    ),
                    shape=(n_rand, self.annotations.n_genes),
                )
                where, counts = self._term_counts(growth)
                random_counts.ravel()[where] += counts
                done = size
            frames.update(self._score(chosen[rows], rows, size, random_counts, ids))
        return [frames[row] for row in range(len(ids))]

    def _term_counts(self, genes: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Flat (row × tested term) positions and counts of ``genes @ annotations``."""
        product = (genes @ self.annotations.counts).tocsr()
        term = self.position[product.indices]
        rows = np.repeat(np.arange(product.shape[0]), np.diff(product.indptr))
        kept = term >= 0
        return rows[kept] * self.n_terms + term[kept], product.data[kept]

    def _score(
        self,
        chosen: sparse.csr_matrix,
        rows: np.ndarray,
        size: int,
        random_counts: np.ndarray,
        ids: list[str],
    ) -> dict[int, pl.DataFrame]:
        observed = np.zeros((len(rows), self.n_terms), dtype=np.int32)
        where, counts = self._term_counts(chosen)
        observed.ravel()[where] = counts
        term_need = np.maximum(observed.max(axis=0), random_counts.max(axis=0, initial=0))
        need = np.maximum.reduceat(term_need[self.by_size], self.size_starts)
        over, under = hypergeom_tails(self.n_tested, size, self.unique_sizes, max_k=need)
        row_start = (self.size_row * over.shape[1]).astype(np.int32)
        over, under = over.ravel(), under.ravel()
        cells = random_counts + row_start
        min_over = np.sort(np.minimum.reduceat(over[cells], self.ns_starts, axis=1), axis=0)
        min_under = np.sort(np.minimum.reduceat(under[cells], self.ns_starts, axis=1), axis=0)
        cells = observed + row_start
        p_over, p_under = over[cells], under[cells]
        fwer_over = _exceedance(min_over, p_over, self.ns_of_term)
        fwer_under = _exceedance(min_under, p_under, self.ns_of_term)
        fdr_over = benjamini_hochberg(p_over)
        keep = self._kept(p_over, fdr_over, fwer_over, fwer_under)
        frames = {}
        for i, row in enumerate(rows.tolist()):
            terms = np.flatnonzero(keep[i])
            terms = terms[np.argsort(p_over[i, terms], kind="stable")]
            genes = chosen.indices[chosen.indptr[i] : chosen.indptr[i + 1]]
            frames[row] = pl.DataFrame(
                [
                    pl.Series("contrast_id", [ids[row]], dtype=pl.String).new_from_index(
                        0, len(terms)
                    ),
                    self.go_series.gather(terms),
                    pl.Series("n_de_in_term", observed[i, terms], dtype=pl.Int32),
                    pl.Series("n_in_term", self.sizes[terms], dtype=pl.Int32),
                    pl.Series("n_de", np.full(len(terms), size, dtype=np.int32)),
                    pl.Series("n_tested", np.full(len(terms), self.n_tested, dtype=np.int32)),
                    pl.Series("p_over", p_over[i, terms]),
                    pl.Series("p_under", p_under[i, terms]),
                    pl.Series("fdr_over", fdr_over[i, terms]),
                    pl.Series("fwer_over", fwer_over[i, terms]),
                    pl.Series("fwer_under", fwer_under[i, terms]),
                    self._leading_edge(genes, terms).alias("leading_edge"),
                ]
            )
        return frames

    def _kept(
        self, p_over: np.ndarray, fdr: np.ndarray, fwer_over: np.ndarray, fwer_under: np.ndarray
    ) -> np.ndarray:
        cut = self.config.keep_p
        return {
            "all": lambda: np.ones_like(p_over, dtype=bool),
            "p_over": lambda: p_over < cut,
            "fdr_over": lambda: fdr < cut,
            "fwer_over": lambda: fwer_over < cut,
            "fwer_either": lambda: (fwer_over < cut) | (fwer_under < cut),
        }[self.config.keep]()

    def _leading_edge(self, genes: np.ndarray, terms: np.ndarray) -> pl.Series:
        """DE genes (gene_index, ascending) of each term, as one list column."""
        genes = np.sort(genes)
        by_term = self.annotations.matrix[genes].tocsc()[:, self.columns[terms]]
        by_term.sort_indices()
        offsets = pa.array(by_term.indptr.astype(np.int32))
        values = pa.array(genes[by_term.indices].astype(np.int32))
        return pl.Series(pa.ListArray.from_arrays(offsets, values))


def _shuffled_prefixes(
    rng: np.random.Generator, n_rand: int, n_items: int, length: int
) -> np.ndarray:
    """First ``length`` items of ``n_rand`` Fisher-Yates shuffles of ``range(n_items)``.

    Step i draws one uniform per shuffle, so every prefix is the same whatever ``length`` is:
    the first n items are a uniform random n-subset, shared by all set sizes <= length.
    """
    order = np.tile(np.arange(n_items, dtype=np.int64), (n_rand, 1))
    if n_rand == 0:
        return order[:, :length]
    rows = np.arange(n_rand)
    for i in range(length):
        j = i + (rng.random(n_rand) * (n_items - i)).astype(np.int64)
        order[rows, i], order[rows, j] = order[rows, j], order[rows, i]
    return order[:, :length]


def _exceedance(sorted_minima: np.ndarray, p: np.ndarray, ns_of_term: np.ndarray) -> np.ndarray:
    """Fraction of random sets whose namespace minimum p is <= each observed p (GOfuncR FWER)."""
    n_rand = sorted_minima.shape[0]
    if n_rand == 0:
        return np.full_like(p, np.nan)
    fwer = np.empty_like(p)
    for ns in range(sorted_minima.shape[1]):
        terms = ns_of_term == ns
        fwer[:, terms] = np.searchsorted(sorted_minima[:, ns], p[:, terms], side="right") / n_rand
    return fwer
