-- Every GEO series with a series matrix, with the species of its DEE2 runs.
SELECT g.gse, g.title, g.platforms, any_value(r.species) AS species
FROM raw.geo_series g
LEFT JOIN raw.dee2_runs r ON r.gse = g.gse
GROUP BY g.gse, g.title, g.platforms
ORDER BY g.gse;
