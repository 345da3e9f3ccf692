-- Contrasts of the chosen splits in a stable order: by the order the splits were asked for, then id.
SELECT s.contrast_id, s.gse, s.split
FROM ml.splits AS s
JOIN core.de_runs AS r ON r.contrast_id = s.contrast_id AND r.status = 'done'
WHERE s.split_name = $split_name AND list_contains($splits, s.split)
ORDER BY list_position($splits, s.split), s.contrast_id;
