-- New contrasts only: rows already in the split are kept as they are (idempotent).
INSERT OR IGNORE INTO ml.splits (split_name, contrast_id, gse, split)
SELECT $split_name, contrast_id, gse, split FROM split_rows;
