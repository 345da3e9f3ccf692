"""Arrow batches out of the warehouse: one collection's per-gene values (one
`FixedSizeList<float32>[n_genes]` per contrast, in `core.genes.gene_index` order, of the chosen
value column of `core.de_results`), GO multi-hot labels, the train/validation/test split by group
(the series for the compendium, the signature itself for imported collections), and spill files.
Memory stays O(batch): nothing here holds the whole matrix unless `load_matrix` is asked for it.

Every function takes a `Warehouse`; a bare DuckDB connection is still accepted while the modules
that pass one (reduce, predict) move to the handle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from degae_tools.atomic import atomic_path
from degae_tools.errors import WarehouseError
from warehouse.handle import Warehouse
from warehouse.queries import Query

SPLITS = ("train", "validation", "test")
LABEL_COLUMNS = ("fwer_over", "fdr_over", "p_over", "fwer_under", "p_under")
COMPENDIUM = "compendium"
# The value kinds a model may read, each the rows of one column of core.de_results.
VALUE_ROWS = {
    "log2fc": Query("export/log2fc_rows"),
    "t": Query("export/t_rows"),
    "z": Query("export/z_rows"),
}
VALUE_COLUMN = {"log2fc": "log_fc", "t": "t", "z": "z"}
COLLECTION_CANDIDATES = Query("export/collection_candidates")
COMPENDIUM_CANDIDATES = Query("export/split_candidates")
HAS_VALUE_COLUMN = Query("export/has_value_column")
HAS_COLLECTIONS = Query("export/has_collections")
SPLIT_EXISTING = Query("export/split_existing")
SPLIT_INSERT = Query("export/split_insert")
SPLIT_CONTRASTS = Query("export/split_contrasts")
GENE_COUNT = Query("export/gene_count")
GO_LABELS = Query("export/go_labels")
SNAPSHOT = Query("export/snapshot")

Source = Warehouse | duckdb.DuckDBPyConnection


@dataclass
class ExportStats:
    """What a batch stream delivered: rows, and (contrast, gene) cells absent from `core.de_results`
    (or NULL/NaN there) that were filled with 0.0, i.e. "no change"."""

    n_rows: int = 0
    n_missing: int = 0
    n_genes: int = 0
    missing_by_contrast: dict[str, int] = field(default_factory=dict)


@contextmanager
def _session(source: Source) -> Iterator[duckdb.DuckDBPyConnection]:
    """One connection for a block of reads: the handle's session, or the connection given."""
    if isinstance(source, Warehouse):
        with source.session() as con:
            yield con
    else:
        yield source


def _rows(source: Source, query: Query, params: dict[str, Any] | None = None) -> list[tuple]:
    with _session(source) as con:
        return con.sql(str(query), params=params).fetchall()


def _arrow(source: Source, query: Query, params: dict[str, Any]) -> pa.Table:
    with _session(source) as con:
        return con.sql(str(query), params=params).to_arrow_table()


# --- the split ------------------------------------------------------------------------------------


def default_split_name(collection: str = COMPENDIUM) -> str:
    """The split a collection's models use unless told: `degae` for the compendium, `degae-NAME`
    for an imported collection (each collection has its own, so no reader mixes them)."""
    return "degae" if collection == COMPENDIUM else f"degae-{collection}"


def split_candidates(source: Source, collection: str = COMPENDIUM) -> list[tuple[str, str]]:
    """(contrast_id, group_key) of a collection's contrasts with stored values, by id. The group
    is what a split keeps together: the series for the compendium, the signature otherwise.

    The compendium's are every contrast of core.contrasts with a finished run, as before
    collections existed (core.collection_contrasts lists its included contrasts only)."""
    if collection == COMPENDIUM:
        return [tuple(r) for r in _rows(source, COMPENDIUM_CANDIDATES)]
    if not _rows(source, HAS_COLLECTIONS)[0][0]:
        raise WarehouseError(
            f"no collection {collection!r} in this warehouse: import it with "
            "`degae-tools import-signatures FILE --collection NAME` first"
        )
    found = [tuple(r) for r in _rows(source, COLLECTION_CANDIDATES, {"collection": collection})]
    if not found:
        raise WarehouseError(
            f"collection {collection!r} has no contrasts with stored values: import it with "
            "`degae-tools import-signatures FILE --collection NAME` (core.collections lists "
            "the collections this warehouse has)"
        )
    return found


def _group_rank(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def ensure_split(
    source: Source,
    split_name: str = "degae",
    seed: int = 69,
    fractions: tuple[float, float, float] = (0.64, 0.16, 0.20),
    collection: str = COMPENDIUM,
) -> str:
    """Assign every contrast of `collection` with stored values to train/validation/test by group.

    Groups are ordered by sha256(seed:group) and cut where the cumulative share of contrasts
    crosses the fractions, so no group is in two splits. Rows already stored are never moved;
    contrasts of a known group join its split and new groups are placed by the same cut. Returns
    split_name. (ml.splits' `gse` column holds the group key.)
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise WarehouseError(f"split fractions must be three shares summing to 1, got {fractions}")
    candidates = split_candidates(source, collection)
    if not candidates:
        raise WarehouseError(
            f"no contrasts with stored values in collection {collection!r} "
            "(core.de_runs status 'done')"
        )
    known = dict(_rows(source, SPLIT_EXISTING, {"split_name": split_name}))
    per_group: dict[str, list[str]] = {}
    for contrast_id, group in candidates:
        per_group.setdefault(group, []).append(contrast_id)
    bounds = np.cumsum(fractions)
    done, assigned = 0, {}
    for group in sorted(per_group, key=lambda g: _group_rank(g, seed)):
        n = len(per_group[group])
        middle = (done + n / 2) / len(candidates)
        assigned[group] = SPLITS[int(np.searchsorted(bounds, middle, side="right").clip(0, 2))]
        done += n
    assigned.update({g: s for g, s in known.items() if g in assigned})
    rows = pa.table(
        {
            "contrast_id": [c for ids in per_group.values() for c in ids],
            "gse": [g for g, ids in per_group.items() for _ in ids],
            "split": [assigned[g] for g, ids in per_group.items() for _ in ids],
        }
    )
    _insert_split(source, rows, split_name)
    return split_name


def _insert_split(source: Source, rows: pa.Table, split_name: str) -> None:
    params = {"split_name": split_name}
    if isinstance(source, Warehouse):
        source.execute(SPLIT_INSERT, params, tables={"split_rows": rows})
        return
    source.register("split_rows", rows)
    try:
        source.execute(str(SPLIT_INSERT), params)
    finally:
        source.unregister("split_rows")


def split_contrasts(
    source: Source, split_name: str, splits: Sequence[str] = ("train",)
) -> list[tuple[str, str, str]]:
    """(contrast_id, group, split) of the chosen splits, in a stable order."""
    for s in splits:
        if s not in SPLITS:
            raise WarehouseError(f"unknown split {s!r}: expected one of {', '.join(SPLITS)}")
    params = {"split_name": split_name, "splits": list(splits)}
    return [tuple(r) for r in _rows(source, SPLIT_CONTRASTS, params)]


# --- values -------------------------------------------------------------------------------------


def gene_count(source: Source) -> int:
    """The number of genes, i.e. the width of every value vector; gene_index must be 0..n-1."""
    n, lo, hi = _rows(source, GENE_COUNT)[0]
    if n == 0:
        raise WarehouseError("core.genes is empty: load genes before exporting values")
    if lo != 0 or hi != n - 1:
        raise WarehouseError(
            f"core.genes.gene_index must run 0..{n - 1} without gaps, found {lo}..{hi}"
        )
    return int(n)


def check_value(source: Source, value: str) -> None:
    """Fail with one line when `value` is not a kind core.de_results holds."""
    if value not in VALUE_ROWS:
        raise WarehouseError(f"unknown value kind {value!r}: expected one of {list(VALUE_ROWS)}")
    if not _rows(source, HAS_VALUE_COLUMN, {"column": VALUE_COLUMN[value]})[0][0]:
        raise WarehouseError(
            f"core.de_results has no {VALUE_COLUMN[value]} column in this warehouse: --value "
            f"{value} needs signatures imported with that value kind"
        )


def value_schema(n_genes: int) -> pa.Schema:
    """The schema of every value batch."""
    return pa.schema(
        [
            ("contrast_id", pa.string()),
            ("split", pa.string()),
            ("n_missing", pa.int32()),
            ("values", pa.list_(pa.float32(), n_genes)),
        ]
    )


def _value_batch(
    source: Source, rows: Sequence[tuple[str, str, str]], n_genes: int, value: str
) -> pa.RecordBatch:
    ids = [r[0] for r in rows]
    cells = _arrow(source, VALUE_ROWS[value], {"contrast_ids": ids})
    value_column = cells["value"]
    cells = cells.filter(
        pc.and_kleene(pc.is_valid(value_column), pc.invert(pc.is_nan(value_column)))
    )
    position = cells["row"].to_numpy()
    genes = cells["gene_index"].to_numpy()
    if len(genes) and (genes.min() < 0 or genes.max() >= n_genes):
        raise WarehouseError(
            f"core.de_results has gene_index {genes.min()}..{genes.max()} outside core.genes "
            f"(0..{n_genes - 1})"
        )
    flat = position.astype(np.int64)
    flat *= n_genes
    flat += genes
    matrix = np.zeros((len(ids), n_genes), dtype=np.float32)
    matrix.reshape(-1)[flat] = cells["value"].to_numpy()
    del flat
    n_present = np.bincount(position, minlength=len(ids))
    missing = (n_genes - n_present).astype(np.int32)
    values = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), n_genes)
    return pa.RecordBatch.from_arrays(
        [pa.array(ids), pa.array([r[2] for r in rows]), pa.array(missing), values],
        schema=value_schema(n_genes),
    )


def iter_value_batches(
    source: Source,
    split_name: str,
    splits: Sequence[str] = ("train",),
    batch_size: int = 256,
    stats: ExportStats | None = None,
    value: str = "log2fc",
) -> Iterator[pa.RecordBatch]:
    """Yield record batches (contrast_id, split, n_missing, values) of at most `batch_size` rows.

    Genes without a value are 0.0; their count is in each row's `n_missing` and added to `stats`.
    """
    with _session(source):
        check_value(source, value)
        n_genes = gene_count(source)
        rows = split_contrasts(source, split_name, splits)
        if stats is not None:
            stats.n_genes = n_genes
        for start in range(0, len(rows), batch_size):
            batch = _value_batch(source, rows[start : start + batch_size], n_genes, value)
            if stats is not None:
                _count_missing(batch, stats)
            yield batch


# The name reduce imports (log2FC is the compendium's value kind).
iter_log2fc_batches = iter_value_batches


def _count_missing(batch: pa.RecordBatch, stats: ExportStats) -> None:
    missing = batch.column("n_missing").to_numpy()
    stats.n_rows += batch.num_rows
    stats.n_missing += int(missing.sum())
    for cid, m in zip(batch.column("contrast_id").to_pylist(), missing, strict=True):
        if m:
            stats.missing_by_contrast[cid] = int(m)


def batch_matrix(batch: pa.RecordBatch) -> np.ndarray:
    """The (rows, n_genes) float32 view of a batch's values column (no copy)."""
    column = batch.column("values")
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=True).reshape(-1, width)


def load_matrix(
    source: Source, split_name: str, splits: Sequence[str] = ("train",), value: str = "log2fc"
) -> tuple[list[str], np.ndarray]:
    """The whole (contrasts × genes) float32 matrix of the chosen splits, for when it fits."""
    ids: list[str] = []
    parts: list[np.ndarray] = []
    with _session(source):
        for batch in iter_value_batches(source, split_name, splits, value=value):
            ids.extend(batch.column("contrast_id").to_pylist())
            parts.append(batch_matrix(batch))
        n_genes = gene_count(source)
    matrix = np.concatenate(parts) if parts else np.zeros((0, n_genes), dtype=np.float32)
    return ids, matrix


def go_label_matrix(
    source: Source,
    contrast_ids: Sequence[str],
    go_ids: Sequence[str] | None = None,
    column: str = "fwer_over",
    threshold: float = 0.05,
) -> tuple[np.ndarray, list[str]]:
    """Multi-hot uint8 (contrasts × terms): 1 where `column` < `threshold` for that pair.

    `go_ids=None` takes every term enriched in at least one of the rows, sorted.
    """
    if column not in LABEL_COLUMNS:
        raise WarehouseError(f"unknown label column {column!r}: expected one of {LABEL_COLUMNS}")
    params = {"contrast_ids": list(contrast_ids), "column": column, "threshold": threshold}
    pairs = _arrow(source, GO_LABELS, params)
    terms = sorted(set(pairs["go_id"].to_pylist())) if go_ids is None else list(go_ids)
    labels = np.zeros((len(contrast_ids), len(terms)), dtype=np.uint8)
    rows = pc.index_in(pairs["contrast_id"], value_set=pa.array(list(contrast_ids), pa.string()))
    cols = pc.index_in(pairs["go_id"], value_set=pa.array(terms, pa.string()))
    keep = pc.and_(pc.is_valid(rows), pc.is_valid(cols))
    labels[
        pc.filter(rows, keep).to_numpy(zero_copy_only=False),
        pc.filter(cols, keep).to_numpy(zero_copy_only=False),
    ] = 1
    return labels, terms


def warehouse_snapshot(source: Source) -> dict[str, Any]:
    """Row counts and content hashes of a model's input tables, plus one sha256 over them."""
    with _session(source) as con:
        cursor = con.execute(str(SNAPSHOT))
        names = [d[0] for d in cursor.description]
        values = cursor.fetchall()[0]
    snapshot = {k: int(v) for k, v in zip(names, values, strict=True)}
    snapshot["hash"] = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()
    return snapshot


# --- spill files ----------------------------------------------------------------------------------


def write_arrow_file(batches: Iterable[pa.RecordBatch], path: Path, schema: pa.Schema) -> int:
    """Spill a batch stream to an Arrow IPC file (atomically: complete or absent); rows written."""
    n = 0
    with (
        atomic_path(Path(path)) as partial,
        pa.OSFile(str(partial), "wb") as sink,
        pa.ipc.new_file(sink, schema) as writer,
    ):
        for batch in batches:
            writer.write_batch(batch)
            n += batch.num_rows
    return n


class ArrowFileSource:
    """Random access to the batches of a spilled Arrow IPC file, read (not memory-mapped) one
    batch at a time, so each epoch re-reads from disk with O(batch) resident memory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with pa.OSFile(str(self.path)) as f:
            reader = pa.ipc.open_file(f)
            self.n_batches = reader.num_record_batches
            self.schema = reader.schema
            sizes, ids, splits = [], [], []
            for i in range(self.n_batches):
                b = reader.get_batch(i)
                sizes.append(b.num_rows)
                ids.extend(b.column("contrast_id").to_pylist())
                splits.extend(b.column("split").to_pylist())
        self.batch_rows = sizes
        self.contrast_ids: list[str] = ids
        self.splits: list[str] = splits
        self.n_rows = sum(sizes)
        self.n_genes = self.schema.field("values").type.list_size

    def batches(self, order: Sequence[int] | None = None) -> Iterator[pa.RecordBatch]:
        """Yield the file's batches in `order` (default: as stored)."""
        with pa.OSFile(str(self.path)) as f:
            reader = pa.ipc.open_file(f)
            for i in order if order is not None else range(self.n_batches):
                yield reader.get_batch(int(i))

    def arrays(self, epoch: int = 0, seed: int | None = None) -> Iterator[np.ndarray]:
        """Yield float32 (rows, n_genes) arrays; with a seed, batch order and rows within each
        batch are permuted by a generator seeded with (seed, epoch), so any epoch replays alike."""
        if seed is None:
            for batch in self.batches():
                yield batch_matrix(batch)
            return
        rng = np.random.default_rng([seed, epoch])
        for batch in self.batches(rng.permutation(self.n_batches)):
            x = batch_matrix(batch)
            yield x[rng.permutation(len(x))]
