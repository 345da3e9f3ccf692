DELETE FROM raw.geo_samples WHERE gse = ?;
