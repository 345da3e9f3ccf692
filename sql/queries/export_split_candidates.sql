-- Contrasts whose DE run finished, with their GEO series: the rows a train/validation/test split assigns.
SELECT r.contrast_id, coalesce(c.gse, split_part(r.contrast_id, ':', 1)) AS gse
FROM core.de_runs AS r
LEFT JOIN core.contrasts AS c USING (contrast_id)
WHERE r.status = 'done'
ORDER BY r.contrast_id;
