-- Every attribute of a contrast and of its dataset, for colouring plots by any of them.
SELECT c.*, d.* EXCLUDE (gse)
FROM core.contrasts c
LEFT JOIN core.datasets d USING (gse);
