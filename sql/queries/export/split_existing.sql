-- The series already assigned under a split name, so that a rerun never moves a series.
SELECT DISTINCT gse, split FROM ml.splits WHERE split_name = $split_name;
