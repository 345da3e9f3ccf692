-- A wide count file (gene ID, then one count column per run) streamed by DuckDB's CSV reader with
-- the types given, not sniffed. Counts are read as DOUBLE so that 1.5 is refused rather than
-- rounded, and come out as INTEGER where the value is a non-negative integer that fits int32,
-- NULL otherwise (an empty cell too): the step refuses a row with a NULL count. Lines the reader
-- cannot parse are skipped and kept, with their line number, in the temporary table
-- ingest_rejects. STAR's summary rows are not genes.
SELECT gene_id,
       CASE WHEN COLUMNS(* EXCLUDE (gene_id)) >= 0
             AND COLUMNS(* EXCLUDE (gene_id)) <= 2147483647
             AND COLUMNS(* EXCLUDE (gene_id)) = floor(COLUMNS(* EXCLUDE (gene_id)))
            THEN CAST(COLUMNS(* EXCLUDE (gene_id)) AS INTEGER) END
FROM read_csv($path, delim = '\t', header = true, columns = $columns, auto_detect = false,
              quote = '', escape = '', store_rejects = true,
              rejects_table = 'ingest_rejects', rejects_scan = 'ingest_scans')
WHERE gene_id IS NULL
   OR gene_id NOT IN ('N_unmapped', 'N_multimapping', 'N_noFeature', 'N_ambiguous');
