"""Arrow batches out of the warehouse: log2FC rows (one `FixedSizeList<float32>[n_genes]` per
contrast, in `core.genes.gene_index` order), GO multi-hot labels, the series-wise split, and a
`tf.data` stream over them. Memory stays O(batch): nothing here holds the whole matrix unless
`load_matrix` is asked for it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from degae_tools.atomic import atomic_path
from degae_tools.errors import WarehouseError
from warehouse.migrate import read_query

if TYPE_CHECKING:
    import tensorflow as tf

SPLITS = ("train", "validation", "test")
LABEL_COLUMNS = ("fwer_over", "fdr_over", "p_over", "fwer_under", "p_under")


@dataclass
class ExportStats:
    """What a batch stream delivered: rows, and (contrast, gene) cells absent from `core.de_results`
    (or NULL/NaN there) that were filled with 0.0, i.e. "no change"."""

    n_rows: int = 0
    n_missing: int = 0
    n_genes: int = 0
    missing_by_contrast: dict[str, int] = field(default_factory=dict)


def _series_rank(gse: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{gse}".encode()).hexdigest()


def ensure_split(
    con: duckdb.DuckDBPyConnection,
    split_name: str = "degae",
    seed: int = 69,
    fractions: tuple[float, float, float] = (0.64, 0.16, 0.20),
) -> str:
    """Assign every contrast with finished DE results to train/validation/test by GEO series.

    Series are ordered by sha256(seed:gse) and cut where the cumulative share of contrasts crosses
    the fractions, so no series is in two splits. Rows already stored are never moved; contrasts of
    a known series join its split and new series are placed by the same cut. Returns split_name.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise WarehouseError(f"split fractions must be three shares summing to 1, got {fractions}")
    candidates = con.execute(read_query("export/split_candidates")).fetchall()
    if not candidates:
        raise WarehouseError("no contrasts with finished DE results (core.de_runs status 'done')")
    known = dict(
        con.execute(read_query("export/split_existing"), {"split_name": split_name}).fetchall()
    )
    per_series: dict[str, list[str]] = {}
    for contrast_id, gse in candidates:
        per_series.setdefault(gse, []).append(contrast_id)
    order = sorted(per_series, key=lambda g: _series_rank(g, seed))
    bounds = np.cumsum(fractions)
    total = len(candidates)
    done = 0
    assigned: dict[str, str] = {}
    for gse in order:
        n = len(per_series[gse])
        middle = (done + n / 2) / total
        assigned[gse] = SPLITS[int(np.searchsorted(bounds, middle, side="right").clip(0, 2))]
        done += n
    assigned.update(known)
    rows = [(cid, gse, assigned[gse]) for gse, ids in per_series.items() for cid in ids]
    table = pa.table(
        {
            "contrast_id": [r[0] for r in rows],
            "gse": [r[1] for r in rows],
            "split": [r[2] for r in rows],
        }
    )
    con.register("split_rows", table)
    try:
        con.execute(read_query("export/split_insert"), {"split_name": split_name})
    finally:
        con.unregister("split_rows")
    return split_name


def split_contrasts(
    con: duckdb.DuckDBPyConnection, split_name: str, splits: Sequence[str] = ("train",)
) -> list[tuple[str, str, str]]:
    """(contrast_id, gse, split) of the chosen splits, in a stable order."""
    for s in splits:
        if s not in SPLITS:
            raise WarehouseError(f"unknown split {s!r}: expected one of {', '.join(SPLITS)}")
    rows = con.execute(
        read_query("export/split_contrasts"), {"split_name": split_name, "splits": list(splits)}
    ).fetchall()
    return [tuple(r) for r in rows]


def gene_count(con: duckdb.DuckDBPyConnection) -> int:
    """The number of genes, i.e. the width of every log2FC vector; gene_index must be 0..n-1."""
    n, lo, hi = con.execute(read_query("export/gene_count")).fetchall()[0]
    if n == 0:
        raise WarehouseError("core.genes is empty: load genes before exporting log2FC")
    if lo != 0 or hi != n - 1:
        raise WarehouseError(
            f"core.genes.gene_index must run 0..{n - 1} without gaps, found {lo}..{hi}"
        )
    return int(n)


def log2fc_schema(n_genes: int) -> pa.Schema:
    """The schema of every log2FC batch."""
    return pa.schema(
        [
            ("contrast_id", pa.string()),
            ("split", pa.string()),
            ("n_missing", pa.int32()),
            ("log2fc", pa.list_(pa.float32(), n_genes)),
        ]
    )


def _log2fc_batch(
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[tuple[str, str, str]],
    n_genes: int,
) -> pa.RecordBatch:
    ids = [r[0] for r in rows]
    cells = con.sql(read_query("export/log2fc_rows"), params={"contrast_ids": ids}).to_arrow_table()
    cells = cells.filter(pc.is_valid(cells["log_fc"])).filter(pc.invert(pc.is_nan(cells["log_fc"])))
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
    matrix.reshape(-1)[flat] = cells["log_fc"].to_numpy()
    del flat
    n_present = np.bincount(position, minlength=len(ids))
    missing = (n_genes - n_present).astype(np.int32)
    log2fc = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), n_genes)
    return pa.RecordBatch.from_arrays(
        [pa.array(ids), pa.array([r[2] for r in rows]), pa.array(missing), log2fc],
        schema=log2fc_schema(n_genes),
    )


def iter_log2fc_batches(
    con: duckdb.DuckDBPyConnection,
    split_name: str,
    splits: Sequence[str] = ("train",),
    batch_size: int = 256,
    stats: ExportStats | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield record batches (contrast_id, split, n_missing, log2fc) of at most `batch_size` rows.

    Genes without a result are 0.0; their count is in each row's `n_missing` and added to `stats`.
    """
    n_genes = gene_count(con)
    rows = split_contrasts(con, split_name, splits)
    if stats is not None:
        stats.n_genes = n_genes
    for start in range(0, len(rows), batch_size):
        batch = _log2fc_batch(con, rows[start : start + batch_size], n_genes)
        if stats is not None:
            missing = batch.column("n_missing").to_numpy()
            stats.n_rows += batch.num_rows
            stats.n_missing += int(missing.sum())
            for cid, m in zip(batch.column("contrast_id").to_pylist(), missing, strict=True):
                if m:
                    stats.missing_by_contrast[cid] = int(m)
        yield batch


def batch_matrix(batch: pa.RecordBatch) -> np.ndarray:
    """The (rows, n_genes) float32 view of a batch's log2fc column (no copy)."""
    column = batch.column("log2fc")
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=True).reshape(-1, width)


def load_matrix(
    con: duckdb.DuckDBPyConnection, split_name: str, splits: Sequence[str] = ("train",)
) -> tuple[list[str], np.ndarray]:
    """The whole (contrasts × genes) float32 matrix of the chosen splits, for when it fits."""
    ids: list[str] = []
    parts: list[np.ndarray] = []
    for batch in iter_log2fc_batches(con, split_name, splits):
        ids.extend(batch.column("contrast_id").to_pylist())
        parts.append(batch_matrix(batch))
    n_genes = gene_count(con)
    matrix = np.concatenate(parts) if parts else np.zeros((0, n_genes), dtype=np.float32)
    return ids, matrix


def go_label_matrix(
    con: duckdb.DuckDBPyConnection,
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
    pairs = con.sql(
        read_query("export/go_labels"),
        params={"contrast_ids": list(contrast_ids), "column": column, "threshold": threshold},
    ).to_arrow_table()
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


def warehouse_snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Row counts and content hashes of a model's input tables, plus one sha256 over them."""
    cursor = con.execute(read_query("export/snapshot"))
    names = [d[0] for d in cursor.description]
    snapshot = {k: int(v) for k, v in zip(names, cursor.fetchall()[0], strict=True)}
    snapshot["hash"] = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()
    return snapshot


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
        self.n_genes = self.schema.field("log2fc").type.list_size

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


def rebatch(arrays: Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Regroup a stream of row blocks into blocks of `batch_size` rows (the last one smaller)."""
    pending: list[np.ndarray] = []
    held = 0
    for x in arrays:
        while len(x):
            take = min(batch_size - held, len(x))
            pending.append(x[:take])
            held += take
            x = x[take:]
            if held == batch_size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, held = [], 0
    if held:
        yield np.concatenate(pending)


def tf_dataset(
    arrays: Callable[[], Iterable[np.ndarray]],
    n_genes: int,
    n_rows: int,
    batch_size: int,
    transform: Callable[[tf.Tensor], tf.Tensor] | None = None,
    targets: bool = True,
    prefetch: int = 2,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of (x, x) batches (or x alone) over a stream of raw log2FC blocks.

    `arrays()` is called once per pass (Keras starts one pass per epoch), `transform` (e.g.
    `Preprocessor.tf_transform`) runs in the tf.data graph, and batches are prefetched.
    """
    import tensorflow as tf

    def generate() -> Iterator[np.ndarray]:
        yield from rebatch(arrays(), batch_size)

    spec = tf.TensorSpec(shape=(None, n_genes), dtype=tf.float32)
    ds = tf.data.Dataset.from_generator(generate, output_signature=spec)
    ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n_rows / batch_size)))
    if transform is not None:
        ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if targets:
        ds = ds.map(lambda x: (x, x))
    return ds.prefetch(prefetch)
