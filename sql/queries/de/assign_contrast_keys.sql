-- Keys for the contrasts of a list that have none yet, after the largest key given so far (in
-- contrast ID order, so the same writes give the same keys).
INSERT INTO core.contrast_keys (contrast_key, contrast_id)
SELECT coalesce((SELECT max(contrast_key) FROM core.contrast_keys), 0)
       + row_number() OVER (ORDER BY contrast_id), contrast_id
FROM (SELECT DISTINCT unnest($contrast_ids::VARCHAR[]) AS contrast_id)
WHERE contrast_id NOT IN (SELECT contrast_id FROM core.contrast_keys);
