-- The stored keys of a list of contrasts (those that ever had values written).
SELECT contrast_id, contrast_key
FROM core.contrast_keys
WHERE contrast_id IN (SELECT unnest($contrast_ids::VARCHAR[]));
