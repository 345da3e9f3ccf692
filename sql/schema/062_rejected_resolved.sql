-- A rejection that a later load resolves (the file loaded after all, the gene or GO term arrived,
-- the series now has a contrast) is kept with the time it was resolved; open ones have NULL.
ALTER TABLE raw.rejected ADD COLUMN IF NOT EXISTS resolved_at TIMESTAMP;
