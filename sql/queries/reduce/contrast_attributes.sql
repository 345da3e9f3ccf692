-- Every attribute of every contrast, for colouring plots by any of them.
SELECT * FROM core.contrasts;
