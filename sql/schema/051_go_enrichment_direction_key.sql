-- when: SELECT count(*) > 0 FROM duckdb_constraints() WHERE schema_name = 'core' AND table_name = 'go_enrichment' AND constraint_type = 'PRIMARY KEY' AND NOT list_contains(constraint_column_names, 'direction')
-- Warehouses made before core.go_enrichment had a direction kept its key (contrast_id, go_id),
-- under which a signature's term enriched both up and down cannot be stored; DuckDB cannot change
-- a key in place, so the table is rebuilt once with the key (contrast_id, go_id, direction), its
-- rows kept (sql/schema/050_collections.sql gave them direction 'both').
CREATE TABLE core.go_enrichment_keyed (
    contrast_id VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,
    n_de_in_term INTEGER,
    n_in_term INTEGER,
    n_de INTEGER,
    n_tested INTEGER,
    p_over DOUBLE,
    p_under DOUBLE,
    fdr_over DOUBLE,
    fwer_over DOUBLE,
    fwer_under DOUBLE,
    leading_edge INTEGER[],
    direction VARCHAR NOT NULL DEFAULT 'both',
    PRIMARY KEY (contrast_id, go_id, direction)
);

INSERT INTO core.go_enrichment_keyed BY NAME
SELECT * REPLACE (coalesce(direction, 'both') AS direction) FROM core.go_enrichment;

DROP TABLE core.go_enrichment;

ALTER TABLE core.go_enrichment_keyed RENAME TO go_enrichment;
