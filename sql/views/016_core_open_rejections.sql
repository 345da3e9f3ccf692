-- Rejections no later load has resolved, by stage: ingest (input files and rows), groups (series
-- or groups that give no contrast), import, and the skipped contrasts of de and go. Counts of
-- "what was rejected" (the ingest summary, the report) are counts of this view by stage.
CREATE OR REPLACE VIEW core.open_rejections AS
SELECT source, stage, line, reason, record, rejected_at
FROM raw.rejected
WHERE resolved_at IS NULL;
