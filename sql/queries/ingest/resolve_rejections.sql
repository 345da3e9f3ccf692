-- Mark a stage's open rejections resolved (of one source, or of every source when it is NULL):
-- a file that now loaded, a file loaded again for genes that arrived, contrasts rebuilt.
UPDATE raw.rejected SET resolved_at = current_timestamp
WHERE stage = $stage AND resolved_at IS NULL AND ($source IS NULL OR source = $source);
