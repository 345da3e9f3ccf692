SELECT DISTINCT split_name FROM ml.splits ORDER BY split_name;
