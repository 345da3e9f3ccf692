-- Whether this connection has the CSV reader's temporary rejects table (from an earlier file).
SELECT count(*) > 0 FROM duckdb_tables() WHERE temporary AND table_name = 'ingest_rejects';
