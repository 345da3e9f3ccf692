-- The lines DuckDB's CSV reader could not parse in the count file just read, one row per line,
-- taken out of its rejects table (it appends, file after file, on one connection).
DELETE FROM ingest_rejects
RETURNING line, error_type::VARCHAR AS error_type, column_idx, column_name, csv_line;
