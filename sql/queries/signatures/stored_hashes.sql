-- The content hash of the values stored for each of the given signatures (absent: none stored).
SELECT s.contrast_id, s.content_hash
FROM core.signatures AS s
JOIN core.de_runs AS r ON r.contrast_id = s.contrast_id AND r.status = 'done'
WHERE s.contrast_id IN (SELECT unnest($contrast_ids::VARCHAR[]));
