-- The values of some contrasts, by key. The range lets DuckDB skip, by their min/max, the row
-- groups that hold other contrasts (a contrast's rows are written together), instead of reading
-- every key of the table.
DELETE FROM core.de_values
WHERE contrast_key BETWEEN $low AND $high
  AND contrast_key IN (SELECT unnest($keys::INTEGER[]));
