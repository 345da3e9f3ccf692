-- Gene ID tables (Entrez ↔ Ensembl) that ingest loaded, newest first: the bridge a signature
-- import maps its genes through when none is given.
SELECT path
FROM raw.source_files
WHERE kind = 'gene_xrefs' AND status = 'loaded'
ORDER BY loaded_at DESC;
