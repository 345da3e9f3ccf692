-- Series seen, series included and included contrasts: what ingest made of its input.
SELECT (SELECT count(*) FROM core.dataset_inclusion) AS n_series,
       (SELECT count(*) FROM core.included_datasets) AS n_included,
       (SELECT count(*) FROM core.included_contrasts) AS n_contrasts;
