SELECT parquet_path FROM raw.count_files WHERE gse = ?;
