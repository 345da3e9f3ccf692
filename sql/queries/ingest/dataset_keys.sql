-- The series of the compendium's datasets as last built (their rows are rebuilt together).
SELECT gse FROM core.datasets;
