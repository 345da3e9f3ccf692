"""A series' counts as ingest stores them: one Parquet file per series beside the warehouse,
`gene_index` then one int32 column per run (`steps.ingest_counts`; warehouses ingested before
kept `(srr, gene_index, count)` rows, runs one after another); read back as one array per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RUN_SEPARATOR = "+"


def sample_counts(by_run: dict[str, np.ndarray], sample_runs: str) -> np.ndarray:
    """The counts of one sample: its run's, or the sum over its runs ("SRR1+SRR2"), as DEE2's
    `srx_agg` sums the runs of an experiment. KeyError names a run without counts."""
    parts = sample_runs.split(RUN_SEPARATOR)
    if len(parts) == 1:
        return by_run[parts[0]]
    return np.sum([by_run[r] for r in parts], axis=0)


def read_counts(parquet_path: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(gene_index, {srr: counts}) of a series' Parquet file, as `load_counts` wrote it."""
    table = pq.read_table(parquet_path)
    if "srr" not in table.column_names:
        runs = table.column_names[1:]
        return table.column("gene_index").to_numpy(), {r: table.column(r).to_numpy() for r in runs}
    # Runs are stored one after another, so the run of each block's first row names the block;
    # reading the dictionary avoids turning every row's run name into a Python string.
    srr = table.column("srr").combine_chunks()
    if not pa.types.is_dictionary(srr.type):
        srr = srr.dictionary_encode()
    n_runs = len(srr.dictionary)
    n_genes = table.num_rows // n_runs
    codes = srr.indices.to_numpy()[::n_genes]
    runs = [srr.dictionary[int(c)].as_py() for c in codes]
    counts = table.column("count").to_numpy().reshape(len(runs), n_genes)
    return table.column("gene_index").to_numpy()[:n_genes], dict(zip(runs, counts, strict=True))
