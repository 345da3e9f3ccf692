-- `degae-tools similar`: how much each signature of a collection resembles a user's DE table,
-- over the genes they share (space 'genes') or in a model's latent code ('latent:<model_id>').
-- Every signature of the collection is scored, so any ranking is a query away.
CREATE TABLE IF NOT EXISTS ml.similar (
    query_id VARCHAR NOT NULL,          -- "{file name}@{sha256 of its content, 12 digits}"
    collection VARCHAR NOT NULL,
    space VARCHAR NOT NULL,             -- genes | latent:<model_id>
    contrast_id VARCHAR NOT NULL,       -- the signature compared with
    query_value VARCHAR NOT NULL,       -- the user's column compared (e.g. DESeq2 stat as z)
    value VARCHAR NOT NULL,             -- the collection's column compared (z, t, log_fc)
    n_shared INTEGER NOT NULL,          -- genes with a value in both
    cosine DOUBLE,
    spearman DOUBLE,
    query_file VARCHAR NOT NULL,
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (query_id, collection, space, contrast_id)
);
