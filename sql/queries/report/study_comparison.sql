-- The latest `compare-study` run: one row per (metric, layers), the two pipelines side by side,
-- metrics in the order compare-study prints them (flows/compare.py: METRIC_ORDER); and its
-- notes, as 'pipeline metric (layers): note'.
WITH latest AS (
    SELECT *
    FROM ml.study_comparison
    WHERE run_id = (SELECT run_id FROM ml.study_comparison ORDER BY created_at DESC LIMIT 1)
)
SELECT
    metric,
    layers,
    any_value(value) FILTER (WHERE pipeline = 'study') AS study,
    any_value(value) FILTER (WHERE pipeline = 'degae') AS degae,
    any_value(seconds) FILTER (WHERE pipeline = 'study') AS study_seconds,
    any_value(seconds) FILTER (WHERE pipeline = 'degae') AS degae_seconds,
    list(
        pipeline || ' ' || metric || CASE WHEN layers > 0 THEN ' (' || layers || ' layers)' ELSE '' END
        || ': ' || note
        ORDER BY pipeline DESC
    ) FILTER (WHERE note <> '') AS notes
FROM latest
GROUP BY metric, layers
ORDER BY
    coalesce(
        list_position(
            ['contrasts', 'genes_modelled', 'test_mse', 'test_r2', 'best_val_mse', 'epochs_run',
             'go_macro_auroc', 'go_macro_auprc', 'go_terms_scored', 'ingest', 'de', 'go'],
            metric
        ),
        99
    ),
    layers;
