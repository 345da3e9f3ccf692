"""Prefect flows: ingest, DE, GO enrichment, study comparison and the scheduled refresh."""

from flows.run_logs import install as _install_run_log_filter

_install_run_log_filter()
