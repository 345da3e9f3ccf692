-- Row counts of the warehouse tables (core.summary).
SELECT "table", n_rows FROM core.summary;
