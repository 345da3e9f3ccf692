-- Open (unresolved) rejections by stage: the one count ingest, the summary and the report give.
SELECT stage, count(*) AS n FROM core.open_rejections GROUP BY stage ORDER BY stage;
