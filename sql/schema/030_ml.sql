-- Deterministic train/validation/test assignment by GEO series (no series in two splits).
CREATE TABLE IF NOT EXISTS ml.splits (
    split_name VARCHAR NOT NULL,        -- e.g. "degae-seed69-64/16/20"
    contrast_id VARCHAR NOT NULL,
    gse VARCHAR NOT NULL,
    split VARCHAR NOT NULL,             -- train | validation | test
    PRIMARY KEY (split_name, contrast_id)
);

CREATE TABLE IF NOT EXISTS ml.models (
    model_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,              -- dense | sparse | denoising | variational | predictor | ...
    study_mode BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    path VARCHAR,
    config VARCHAR NOT NULL,            -- JSON of the frozen config dataclass
    snapshot VARCHAR,                   -- JSON: warehouse row counts and input hash
    snapshot_hash VARCHAR,
    metrics VARCHAR                     -- JSON
);

CREATE TABLE IF NOT EXISTS ml.history (
    model_id VARCHAR NOT NULL,
    epoch INTEGER NOT NULL,
    loss DOUBLE,
    val_loss DOUBLE,
    learning_rate DOUBLE,
    seconds DOUBLE,
    PRIMARY KEY (model_id, epoch)
);

CREATE TABLE IF NOT EXISTS ml.trials (
    search_id VARCHAR NOT NULL,
    trial INTEGER NOT NULL,
    fold INTEGER NOT NULL,
    neurons INTEGER NOT NULL,
    layers INTEGER NOT NULL,
    kind VARCHAR,
    val_loss DOUBLE,
    seconds DOUBLE,
    finished_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (search_id, trial, fold)
);

-- Coordinates of every contrast under a method: an autoencoder's latent code, PCA, t-SNE, UMAP.
CREATE TABLE IF NOT EXISTS ml.embeddings (
    model_id VARCHAR NOT NULL,          -- a model, or a reduce run id
    method VARCHAR NOT NULL,            -- latent | pca | tsne | umap | latent_tsne | ...
    contrast_id VARCHAR NOT NULL,
    split VARCHAR,
    coords FLOAT[] NOT NULL,
    PRIMARY KEY (model_id, method, contrast_id)
);

-- Held-out reconstruction of a model beside PCA of the same latent size on the same split.
CREATE TABLE IF NOT EXISTS ml.reconstruction (
    model_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL,            -- autoencoder | pca
    split VARCHAR NOT NULL,
    latent_dim INTEGER,
    mse DOUBLE,
    r2 DOUBLE,
    PRIMARY KEY (model_id, method, split)
);

CREATE TABLE IF NOT EXISTS ml.go_predictions (
    model_id VARCHAR NOT NULL,
    predictor VARCHAR NOT NULL,         -- latent_head | prior | pca_logreg | genes_linear | ...
    contrast_id VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,
    score DOUBLE,
    label BOOLEAN,
    PRIMARY KEY (model_id, predictor, contrast_id, go_id)
);

CREATE TABLE IF NOT EXISTS ml.go_metrics (
    model_id VARCHAR NOT NULL,
    predictor VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,             -- a GO term, or 'macro' / 'micro'
    n_pos_train INTEGER,
    n_pos_test INTEGER,
    auroc DOUBLE,
    auprc DOUBLE,
    PRIMARY KEY (model_id, predictor, go_id)
);

-- Integrated gradients: one row per (contrast, term) pair with its completeness check.
CREATE TABLE IF NOT EXISTS ml.attribution_pairs (
    model_id VARCHAR NOT NULL,
    contrast_id VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,
    why VARCHAR,                        -- predicted | enriched | both
    f_x DOUBLE,
    f_baseline DOUBLE,
    attribution_sum DOUBLE,
    completeness_gap DOUBLE,
    steps INTEGER,
    rule VARCHAR,
    PRIMARY KEY (model_id, contrast_id, go_id)
);

CREATE TABLE IF NOT EXISTS ml.gene_attributions (
    model_id VARCHAR NOT NULL,
    contrast_id VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,
    gene_index INTEGER NOT NULL,
    attribution DOUBLE NOT NULL,
    rank INTEGER NOT NULL,
    PRIMARY KEY (model_id, contrast_id, go_id, gene_index)
);

CREATE TABLE IF NOT EXISTS ml.term_genes (
    model_id VARCHAR NOT NULL,
    go_id VARCHAR NOT NULL,
    gene_index INTEGER NOT NULL,
    mean_abs_attribution DOUBLE,
    n_pairs INTEGER,
    n_top_k INTEGER,
    frac_top_k DOUBLE,
    rank INTEGER,
    PRIMARY KEY (model_id, go_id, gene_index)
);

-- Checks of attributions and models that any user can rerun (precision@k, Jaccard, ...).
CREATE TABLE IF NOT EXISTS ml.validation (
    model_id VARCHAR NOT NULL,
    check_name VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    value DOUBLE,
    n INTEGER,
    detail VARCHAR,
    PRIMARY KEY (model_id, check_name, method)
);
