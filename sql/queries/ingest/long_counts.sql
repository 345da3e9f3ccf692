-- A long count file (run, gene ID, count lines; DEE2's per-run STAR counts, with or without a
-- header) read by DuckDB's CSV reader, each gene with its core.genes index (NULL: unknown).
-- Unparsable lines go to the temporary table ingest_rejects with their line number.
SELECT c.run, c.gene_id, g.gene_index, c.count
FROM read_csv($path, delim = '\t', header = $header, auto_detect = false, quote = '', escape = '',
              columns = {'run': 'VARCHAR', 'gene_id': 'VARCHAR', 'count': 'DOUBLE'},
              store_rejects = true,
              rejects_table = 'ingest_rejects', rejects_scan = 'ingest_scans') AS c
LEFT JOIN core.genes AS g ON g.gene_id = c.gene_id
WHERE c.gene_id IS NULL
   OR c.gene_id NOT IN ('N_unmapped', 'N_multimapping', 'N_noFeature', 'N_ambiguous');
