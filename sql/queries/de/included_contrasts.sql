-- How many contrasts are included (the input of DE).
SELECT count(*) FROM core.included_contrasts;
