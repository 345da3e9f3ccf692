-- Contrasts of included datasets with >= 2 replicates on both sides: the input of DE and GO.
CREATE OR REPLACE VIEW core.included_contrasts AS
SELECT c.*
FROM core.contrasts c
JOIN core.included_datasets USING (gse)
WHERE len(c.runs_a) >= 2 AND len(c.runs_b) >= 2;
