-- A wide count file (gene ID, then one count column per run) streamed by DuckDB's CSV reader with
-- the types given, not sniffed. Counts are read as DOUBLE so that the step can refuse 1.5 rather
-- than round it. Lines the reader cannot parse are skipped and kept, with their line number, in
-- the temporary table ingest_rejects. STAR's summary rows are not genes.
SELECT *
FROM read_csv($path, delim = '\t', header = true, columns = $columns, auto_detect = false,
              quote = '', escape = '', store_rejects = true,
              rejects_table = 'ingest_rejects', rejects_scan = 'ingest_scans')
WHERE gene_id IS NULL
   OR gene_id NOT IN ('N_unmapped', 'N_multimapping', 'N_noFeature', 'N_ambiguous');
