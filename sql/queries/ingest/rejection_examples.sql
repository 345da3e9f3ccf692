-- The first open rejections of input files and rows (stage ingest), for ingest's notes to name.
SELECT source, line, reason
FROM core.open_rejections
WHERE stage = 'ingest'
ORDER BY source, line
LIMIT $n;
