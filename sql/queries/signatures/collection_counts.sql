-- A collection's counts as the warehouse now holds them: signatures, distinct genes with a value,
-- distinct gene names of its files that mapped onto no gene, and the value columns it holds.
WITH members AS (
    SELECT contrast_id, source_file FROM core.signatures WHERE collection = $collection
),
genes AS (
    SELECT count(DISTINCT r.gene_index) AS n
    FROM core.de_results AS r
    JOIN members AS m USING (contrast_id)
),
unmapped AS (
    SELECT count(DISTINCT j.record) AS n
    FROM raw.rejected AS j
    WHERE j.stage = 'ingest' AND j.reason LIKE 'unmapped gene%'
      AND j.source IN (SELECT source_file FROM members)
),
existing AS (
    SELECT any_value(value_kinds) AS value_kinds FROM core.collections WHERE collection = $collection
)
SELECT (SELECT count(*) FROM members)::INTEGER AS n_rows,
       genes.n::INTEGER AS n_genes_mapped,
       unmapped.n::INTEGER AS n_genes_unmapped,
       existing.value_kinds
FROM genes, unmapped, existing;
