-- The study's random 64/16/20 split of contrasts (series may straddle splits, as in the study).
INSERT INTO ml.splits (split_name, contrast_id, gse, split)
SELECT $split_name, contrast_id, gse, split FROM study_split_rows;
