-- when: SELECT count(*) > 0 FROM duckdb_tables() WHERE schema_name = 'core' AND table_name = 'de_results'
-- Warehouses made before core.de_values kept every value in the table core.de_results (contrast
-- IDs as text, DOUBLE statistics): its rows move into core.de_values under new contrast keys, and
-- the table gives its name to the view (sql/views/058_core_de_results.sql). Runs once, on the
-- first write to such a warehouse.
INSERT INTO core.contrast_keys (contrast_key, contrast_id)
SELECT coalesce((SELECT max(contrast_key) FROM core.contrast_keys), 0)
       + row_number() OVER (ORDER BY contrast_id), contrast_id
FROM (SELECT DISTINCT contrast_id FROM core.de_results)
WHERE contrast_id NOT IN (SELECT contrast_id FROM core.contrast_keys);

INSERT INTO core.de_values BY NAME
SELECT k.contrast_key, d.* EXCLUDE (contrast_id)
FROM core.de_results AS d
JOIN core.contrast_keys AS k USING (contrast_id)
ORDER BY k.contrast_key, d.p_value NULLS LAST, d.gene_index;

DROP TABLE core.de_results;
