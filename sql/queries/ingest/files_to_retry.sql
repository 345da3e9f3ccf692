-- Loaded files with rows rejected, still open, for one of the given reasons (a gene or GO ID that
-- was unknown when they loaded): the files to load again once genes or an ontology arrive.
SELECT DISTINCT f.path, f.kind, f.sha256
FROM raw.source_files AS f
JOIN core.open_rejections AS r ON r.source = f.path AND r.stage = 'ingest'
WHERE f.status = 'loaded' AND list_contains($reasons, r.reason)
ORDER BY f.kind, f.path;
