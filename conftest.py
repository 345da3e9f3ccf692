"""Test-session setup: an isolated Prefect home and quiet telemetry for every run."""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="degae-prefect-"))
# pytest-xdist's workers inherit the controller's environment; each gets a Prefect home (and so an
# ephemeral server's SQLite database) of its own.
if "PYTEST_XDIST_WORKER" in os.environ:
    worker = os.environ["PYTEST_XDIST_WORKER"]
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"degae-prefect-{worker}-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
