DELETE FROM raw.geo_characteristics WHERE gse = ?;
