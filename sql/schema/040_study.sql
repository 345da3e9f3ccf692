-- The reference study's pipeline beside degae's defaults on one compendium (`compare-study`):
-- one row per (run, pipeline, metric, layers); layers is 0 for rows that are not about a model.
CREATE TABLE IF NOT EXISTS ml.study_comparison (
    run_id VARCHAR NOT NULL,
    pipeline VARCHAR NOT NULL,          -- study | degae
    metric VARCHAR NOT NULL,            -- test_mse | test_r2 | best_val_mse | go_macro_auroc | ...
    layers INTEGER NOT NULL,
    value DOUBLE,
    seconds DOUBLE,                     -- wall time of the stage that produced the value
    note VARCHAR,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (run_id, pipeline, metric, layers)
);
