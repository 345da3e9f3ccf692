-- The imported collections a DE table can be compared with.
SELECT collection FROM core.collections ORDER BY collection;
