-- Contrasts stored under a split name (0: the study's split is still to be written).
SELECT count(*) FROM ml.splits WHERE split_name = $split_name;
