-- One collection's contrasts with stored values, with the group a split keeps together: the
-- series for the compendium, the signature itself for an imported collection.
SELECT c.contrast_id, c.group_key
FROM core.collection_contrasts AS c
JOIN core.de_runs AS r ON r.contrast_id = c.contrast_id AND r.status = 'done'
WHERE c.collection = $collection
ORDER BY c.contrast_id;
