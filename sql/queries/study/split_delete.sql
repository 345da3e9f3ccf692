-- The study's contrast-wise split replaces any earlier rows of the same split name.
DELETE FROM ml.splits WHERE split_name = $split_name;
