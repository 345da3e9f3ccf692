-- Every contrast a model can be trained on, with its collection and the group a split keeps
-- together: the compendium's included contrasts grouped by series, and each imported signature
-- on its own (a group of one).
CREATE OR REPLACE VIEW core.collection_contrasts AS
SELECT contrast_id, 'compendium' AS collection, gse AS group_key
FROM core.included_contrasts
UNION ALL
SELECT contrast_id, collection, contrast_id AS group_key
FROM core.signatures;
