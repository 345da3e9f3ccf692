-- Loaded files with rows rejected, still open, for one of the given reasons (a gene or GO ID that
-- was unknown when they loaded): the files to load again once genes or an ontology arrive. Only
-- kinds ingest loads and rejects such rows of (imported DE tables, kinds 'de_table:<contrast>',
-- record unknown genes too, but are not ingest's to load again).
SELECT DISTINCT f.path, f.kind, f.sha256
FROM raw.source_files AS f
JOIN core.open_rejections AS r ON r.source = f.path AND r.stage = 'ingest'
WHERE f.status = 'loaded' AND f.kind IN ('annotations', 'counts')
  AND list_contains($reasons, r.reason)
ORDER BY f.kind, f.path;
