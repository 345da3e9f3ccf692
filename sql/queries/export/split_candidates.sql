-- The compendium's contrasts whose DE run finished, with their GEO series: the rows its split
-- assigns (a contrast dropped by a later ingest no longer exists in core.contrasts and is left
-- out).
SELECT r.contrast_id, c.gse
FROM core.de_runs AS r
JOIN core.contrasts AS c USING (contrast_id)
WHERE r.status = 'done'
ORDER BY r.contrast_id;
