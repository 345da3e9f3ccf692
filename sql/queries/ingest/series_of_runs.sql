-- The GEO series most of the given runs belong to, by their DEE2 metadata (NULL: none known).
SELECT mode(gse) FROM raw.dee2_runs WHERE list_contains($runs, srr) AND gse IS NOT NULL;
