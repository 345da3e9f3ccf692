"""The `similar` step: which signatures of a collection resemble a user's DE table, and which
oppose it (what CMap and L1000CDS2 users ask, answered over the warehouse).

The user's table (any format `import-de` reads) is compared on the collection's value: for an
L1000 collection of moderated z-scores, DESeq2's Wald `stat` (a z), limma's or edgeR's p-value
turned into a signed normal score. Scores are the cosine and Spearman's rank correlation over the
genes both measured (space `genes`), or the same two between latent codes of a trained model
(space `latent`). Every signature's scores are stored in `ml.similar` (the table is not changed
by the user's file, which is never imported), so any ranking is one query away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from degae_tools.errors import DegaeError, ResultTableError
from degae_tools.signature_config import SimilarConfig
from degae_tools.sources.de_tables import DETable, read_de_table
from degae_tools.steps.gene_map import map_genes
from degae_tools.steps.imports import gene_id_system, species_of_ids
from degae_tools.steps.signatures import file_sha256
from warehouse import Query, Warehouse

COLLECTIONS = Query("similar/collections")
COLLECTION_SCORES = Query("similar/collection_scores")
# The user's column compared with each collection value, in order of preference.
QUERY_COLUMNS = {"z": ("z",), "t": ("t", "z"), "log_fc": ("log_fc",)}
# What each format's `z` is, for the record.
Z_SOURCE = {"deseq2": "stat", "edger": "signed normal score of PValue", "limma": "signed normal "
            "score of P.Value"}  # fmt: skip
KEY = ("query_id", "collection", "space")


@dataclass(frozen=True)
class QueryVector:
    """The user's table as a value per warehouse gene, with what was compared."""

    query_id: str
    path: Path
    column: str  # the DETable column compared
    description: str  # e.g. "deseq2 stat"
    gene_index: np.ndarray
    values: np.ndarray
    n_rows: int


@dataclass(frozen=True)
class CollectionMatrix:
    """A collection's signatures × measured genes (NaN where a signature has no value)."""

    name: str
    value: str
    contrast_ids: list[str]
    names: list[str]
    gene_index: np.ndarray
    values: np.ndarray


@dataclass
class SimilarResult:
    """Every signature's scores, and the summary the CLI prints."""

    query: QueryVector
    collection: CollectionMatrix
    space: str
    scores: pl.DataFrame

    def ranked(self, rank_by: str, top: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The `top` most similar and the `top` most opposite signatures."""
        scored = self.scores.filter(pl.col(rank_by).is_not_null())
        similar = scored.sort(rank_by, "contrast_id", descending=[True, False]).head(top)
        opposite = scored.sort(rank_by, "contrast_id").head(top)
        return similar, opposite


def run(wh: Warehouse, path: str | Path, config: SimilarConfig = SimilarConfig()) -> SimilarResult:
    """Score every signature of the collection against the DE table at `path`, store the scores
    in `ml.similar` (replacing this table's earlier ones) and return them."""
    collection = read_collection(wh, choose_collection(wh, config.collection))
    query = read_query(wh, Path(path), collection)
    shared, cosine, spearman = gene_space(query, collection, config.min_shared)
    space = "genes"
    if config.space == "latent":
        space, cosine, spearman = latent_space(wh, config.model, query, collection, shared)
        cosine[shared < config.min_shared] = np.nan
        spearman[shared < config.min_shared] = np.nan
    scores = pl.DataFrame(
        {
            "contrast_id": collection.contrast_ids,
            "name": collection.names,
            "n_shared": shared.astype(np.int32),
            "cosine": cosine,
            "spearman": spearman,
        }
    ).with_columns(pl.col("cosine", "spearman").fill_nan(None))
    result = SimilarResult(query, collection, space, scores)
    store(wh, result)
    return result


def choose_collection(wh: Warehouse, name: str | None) -> str:
    """`name` if the warehouse holds it, else the only imported collection."""
    known = [c for (c,) in wh.rows(COLLECTIONS)]
    if name is not None and name in known:
        return name
    if name is None and len(known) == 1:
        return known[0]
    held = ", ".join(known) or "none: import one with `degae-tools import-signatures`"
    asked = f"no collection {name!r}" if name else "which collection? (--collection)"
    raise DegaeError(f"{asked}; the warehouse holds: {held}")


def read_collection(wh: Warehouse, name: str) -> CollectionMatrix:
    """The collection's values as a dense signatures × genes matrix."""
    rows = wh.frame(COLLECTION_SCORES, {"collection": name})
    ids = rows.select("contrast_id", "name").unique(maintain_order=True)
    genes = np.unique(rows["gene_index"].to_numpy())
    values = np.full((ids.height, len(genes)), np.nan)
    row_of = {cid: i for i, cid in enumerate(ids["contrast_id"])}
    r = np.array([row_of[c] for c in rows["contrast_id"]], dtype=np.int64)
    values[r, np.searchsorted(genes, rows["gene_index"].to_numpy())] = rows["value"].to_numpy()
    value = rows["value_column"][0] if rows.height else "z"
    return CollectionMatrix(
        name, value, ids["contrast_id"].to_list(), ids["name"].to_list(), genes, values
    )


def read_query(wh: Warehouse, path: Path, collection: CollectionMatrix) -> QueryVector:
    """The user's DE table as values of warehouse genes (mapped by Ensembl ID, then by symbol;
    nothing is added to the warehouse)."""
    table = read_de_table(path)
    filled = [c for c in QUERY_COLUMNS[collection.value] if c in table.value_kinds]
    if not filled:
        raise ResultTableError(
            path, 1, f"no {collection.value} values to compare with collection {collection.name}"
        )
    column = filled[0]
    gene_index = known_gene_index(wh, table)
    keep = (gene_index >= 0) & table.rows[column].is_not_null().to_numpy()
    frame = pl.DataFrame(
        {"gene_index": gene_index[keep], "value": table.rows[column].to_numpy()[keep]}
    ).unique("gene_index", keep="first", maintain_order=True)
    description = f"{table.format} {Z_SOURCE[table.format] if column == 'z' else column}"
    return QueryVector(
        f"{path.name}@{file_sha256(path)[:12]}", path, column, description,
        frame["gene_index"].to_numpy(), frame["value"].to_numpy(), table.rows.height,
    )  # fmt: skip


def known_gene_index(wh: Warehouse, table: DETable) -> np.ndarray:
    """gene_index of each row among the warehouse's genes (-1: none), by the table's own IDs,
    then by the symbol of its row names."""
    genes = table.rows["gene"].to_list()
    species = species_of_ids(genes) or "hsapiens"
    n_known = int(wh.scalar("SELECT coalesce(max(gene_index) + 1, 0) FROM core.genes"))
    index = map_genes(wh, genes, gene_id_system(genes), species, None).gene_index
    index[index >= n_known] = -1
    symbols = table.rows["symbol"].to_list()
    missing = np.flatnonzero((index < 0) & np.array([s is not None for s in symbols]))
    if len(missing):
        by_symbol = map_genes(wh, [symbols[i] for i in missing], "symbol", species, None).gene_index
        by_symbol[by_symbol >= n_known] = -1
        index[missing] = by_symbol
    return index


def gene_space(
    query: QueryVector, collection: CollectionMatrix, min_shared: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared genes, cosine and Spearman of the query with every signature over the genes both
    measured (NaN below `min_shared` genes)."""
    u = np.full(len(collection.gene_index), np.nan)
    at = np.searchsorted(collection.gene_index, query.gene_index)
    inside = (at < len(u)) & (collection.gene_index[np.minimum(at, len(u) - 1)] == query.gene_index)
    u[at[inside]] = query.values[inside]
    both = ~np.isnan(collection.values) & ~np.isnan(u)[None, :]
    shared = both.sum(axis=1)
    cosine = np.full(len(shared), np.nan)
    spearman = np.full(len(shared), np.nan)
    for i in np.flatnonzero(shared >= min_shared):
        a, b = collection.values[i, both[i]], u[both[i]]
        cosine[i], spearman[i] = cosine_and_spearman(a, b)
    return shared, cosine, spearman


def cosine_and_spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """cos(a, b) and Spearman's rho (Pearson of average ranks); NaN where either is constant."""
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / norm) if norm > 0 else np.nan
    ra, rb = stats.rankdata(a) - (len(a) + 1) / 2, stats.rankdata(b) - (len(b) + 1) / 2
    rank_norm = np.linalg.norm(ra) * np.linalg.norm(rb)
    return cosine, float(ra @ rb / rank_norm) if rank_norm > 0 else np.nan


def latent_space(
    wh: Warehouse,
    model: str,
    query: QueryVector,
    collection: CollectionMatrix,
    shared: np.ndarray,
) -> tuple[str, np.ndarray, np.ndarray]:
    """Cosine and Spearman between the model's latent code of the query and of each signature
    (genes a table lacks enter as 0, no change, as in training)."""
    from degae_tools.steps.predict import load_bundle, resolve_model_dir

    bundle = load_bundle(resolve_model_dir(wh, model))
    width = bundle.gene_count
    x = np.zeros((len(collection.contrast_ids) + 1, width), np.float32)
    inside = collection.gene_index < width
    x[:-1, collection.gene_index[inside]] = np.nan_to_num(collection.values[:, inside])
    mine = query.gene_index < width
    x[-1, query.gene_index[mine]] = query.values[mine]
    codes = bundle.encoder.predict(bundle.preprocessor.transform(x), verbose=0)
    codes = np.asarray(codes[0] if isinstance(codes, list | tuple) else codes, np.float64)
    pairs = [cosine_and_spearman(code, codes[-1]) for code in codes[:-1]]
    cosine, spearman = (np.array(v, dtype=np.float64) for v in zip(*pairs, strict=True))
    return f"latent:{bundle.model_id}", cosine, spearman


def store(wh: Warehouse, result: SimilarResult) -> None:
    """Replace this table's scores against this collection in this space."""
    q, c = result.query, result.collection
    rows = result.scores.drop("name").with_columns(
        pl.lit(q.query_id).alias("query_id"),
        pl.lit(c.name).alias("collection"),
        pl.lit(result.space).alias("space"),
        pl.lit(q.description).alias("query_value"),
        pl.lit(c.value).alias("value"),
        pl.lit(str(q.path)).alias("query_file"),
    )
    where = dict(zip(KEY, (q.query_id, c.name, result.space), strict=True))
    wh.replace_rows("ml.similar", rows, where=where)
