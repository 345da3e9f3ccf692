-- Record rejected rows; the same (source, stage, line, reason) is kept once.
INSERT OR IGNORE INTO raw.rejected (source, stage, line, reason, record)
SELECT source, stage, line, reason, record FROM rejections_in;
