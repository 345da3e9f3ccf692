-- Every attribute of every dataset (GEO series), for colouring plots by any of them.
SELECT * FROM core.datasets;
