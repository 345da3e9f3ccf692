-- How many input files have been loaded into the warehouse (any kind).
SELECT count(*) FROM raw.source_files WHERE status = 'loaded';
