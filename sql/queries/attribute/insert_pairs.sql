-- new_pairs: an Arrow table registered by degae_tools.attribute (columns in table order).
INSERT INTO ml.attribution_pairs SELECT * FROM new_pairs;
