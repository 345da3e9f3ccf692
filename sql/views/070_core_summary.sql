-- One row per warehouse table with its row count: the summary the CLI prints after ingest. Its
-- rejections are ingest's open ones, the count the ingest summary and its notes give.
CREATE OR REPLACE VIEW core.summary AS
SELECT 'raw.dee2_runs' AS "table", count(*) AS n_rows FROM raw.dee2_runs
UNION ALL SELECT 'raw.geo_samples', count(*) FROM raw.geo_samples
UNION ALL SELECT 'raw.count_files', count(*) FROM raw.count_files
UNION ALL SELECT 'core.open_rejections (ingest, groups)', count(*) FROM core.open_rejections
    WHERE stage IN ('ingest', 'groups')
UNION ALL SELECT 'core.genes', count(*) FROM core.genes
UNION ALL SELECT 'core.datasets', count(*) FROM core.datasets
UNION ALL SELECT 'core.included_datasets', count(*) FROM core.included_datasets
UNION ALL SELECT 'core.contrasts', count(*) FROM core.contrasts
UNION ALL SELECT 'core.included_contrasts', count(*) FROM core.included_contrasts
UNION ALL SELECT 'core.go_terms', count(*) FROM core.go_terms
UNION ALL SELECT 'core.go_annotations', count(*) FROM core.go_annotations
UNION ALL SELECT 'core.de_results', count(*) FROM core.de_results
UNION ALL SELECT 'core.go_enrichment', count(*) FROM core.go_enrichment
UNION ALL SELECT 'ml.models', count(*) FROM ml.models;
