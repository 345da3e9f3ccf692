"""The pipeline's steps, one module each: what a command or a flow runs on a `Warehouse`.

ingest → de → go → train / search → predict → attribute → reduce → report (and study, the
reference study's recipe beside degae's). A step reads and writes the warehouse through the
handle it is given, and calls the numerics (limma, enrichment, models) and readers (sources)
below it; it never imports the CLI or Prefect.
"""
