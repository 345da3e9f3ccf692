-- The runs that have counts, by series.
SELECT gse, runs FROM raw.count_files;
