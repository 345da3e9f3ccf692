-- Where a series' counts are, from which file, with which runs and genes (one per count file).
INSERT OR REPLACE INTO raw.count_files
    (gse, parquet_path, source_file, runs, n_runs, n_genes, n_unknown_genes)
VALUES ($gse, $parquet_path, $source_file, $runs, $n_runs, $n_genes, $n_unknown_genes);
