-- Who holds which of a list of contrasts in a stage, and until when.
SELECT contrast_id, host, pid, expires_at
FROM core.claims
WHERE stage = $stage AND contrast_id IN (SELECT unnest($contrast_ids::VARCHAR[]));
