-- Whether core.de_results (a table or a view) has the column a value kind reads ($column).
SELECT count(*) > 0
FROM duckdb_columns()
WHERE schema_name = 'core' AND table_name = 'de_results' AND column_name = $column;
