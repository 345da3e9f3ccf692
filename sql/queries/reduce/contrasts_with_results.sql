-- How many contrasts have finished DE results (what reduce projects; the rows a split assigns).
SELECT count(*)
FROM core.de_runs AS r
JOIN core.contrasts AS c USING (contrast_id)
WHERE r.status = 'done';
