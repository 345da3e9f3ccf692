-- The reference study's inclusion criteria as a view: every dataset that passes them all.
CREATE OR REPLACE VIEW core.included_datasets AS
SELECT i.gse, d.species, d.title, d.platforms, d.group_key, d.n_groups, i.n_runs, i.n_contrasts
FROM core.dataset_inclusion i
JOIN core.datasets d USING (gse)
WHERE i.exclusion_reason IS NULL;
