-- Imported signatures: contrasts whose GO candidates are their strongest genes up and down.
SELECT contrast_id FROM core.signatures ORDER BY contrast_id;
