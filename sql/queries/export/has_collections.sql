-- Whether the warehouse knows collections yet (core.collection_contrasts, a view).
SELECT count(*) > 0
FROM duckdb_views()
WHERE schema_name = 'core' AND view_name = 'collection_contrasts';
