-- Whether the compendium has this contrast (imported results must belong to one).
SELECT count(*) > 0 FROM core.contrasts WHERE contrast_id = $contrast_id;
