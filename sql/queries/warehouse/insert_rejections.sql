-- Record rejected rows; the same (source, stage, line, reason) is kept once, and a rejection
-- seen again is open again (a later load may have marked it resolved).
INSERT INTO raw.rejected (source, stage, line, reason, record)
SELECT DISTINCT ON (source, stage, line, reason) source, stage, line, reason, record
FROM rejections_in
ON CONFLICT DO UPDATE SET resolved_at = NULL, record = excluded.record;
