-- Characteristics of every series, samples in file order.
SELECT c.gse, c.gsm, c."row", c.key, c.value
FROM raw.geo_characteristics c
JOIN raw.geo_samples s USING (gse, gsm)
ORDER BY c.gse, s.position, c."row";
