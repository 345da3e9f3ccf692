-- Loaded annotation files with rows rejected for one of the given reasons (a gene or GO ID that
-- was unknown when they loaded): the files to load again once genes or an ontology arrive.
SELECT DISTINCT f.path, f.sha256
FROM raw.source_files AS f
JOIN raw.rejected AS r ON r.source = f.path AND r.stage = 'ingest'
WHERE f.kind = 'annotations' AND f.status = 'loaded' AND list_contains(?, r.reason)
ORDER BY f.path;
