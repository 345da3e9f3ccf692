-- Contrasts with finished DE results and no GO enrichment yet.
SELECT d.contrast_id
FROM core.de_runs d
WHERE d.status = 'done'
  AND d.contrast_id NOT IN (SELECT contrast_id FROM core.go_runs)
ORDER BY d.contrast_id;
