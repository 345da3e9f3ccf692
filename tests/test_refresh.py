"""The scheduled refresh: a whole-pipeline flow that only does what is new, served to a real
Prefect server as a cron-scheduled deployment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from degae_tools.sources.simulate import SimulationConfig, simulate
from flows.refresh import refresh_flow
from tests.helpers import REPO, checkout_env, cli_command
from warehouse import Warehouse


def test_a_refresh_with_nothing_new_does_nothing(small_compendium, tmp_path):
    compendium = small_compendium
    db = str(tmp_path / "w.duckdb")
    first = refresh_flow(str(compendium), db)
    second = refresh_flow(str(compendium), db)
    assert first["differential"]["done"] > 0 and first["enrichment"]["done"] > 0
    assert (
        second["ingest"]["loaded"] == 0 and second["ingest"]["skipped"] == first["ingest"]["loaded"]
    )
    assert second["differential"] == {"done": 0, "skipped": 0, "reasons": {}}
    assert second["enrichment"]["done"] == 0


TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, ValueError):
            value = None
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"gave up waiting for {what}")


def nightly_deployment(api: str) -> dict:
    """The deployment refresh/nightly, once a served process has registered it."""

    def registered() -> dict | None:
        found = httpx.get(f"{api}/deployments/name/refresh/nightly").json()
        return found if found.get("id") else None

    return wait_for(registered, 120, "the deployment")


@pytest.fixture(scope="module")
def small_compendium(tmp_path_factory):
    """Four series: what the refresh tests claim does not depend on the compendium's size."""
    out = tmp_path_factory.mktemp("small-compendium")
    simulate(out, SimulationConfig(datasets=4, genes=200, go_terms=30, seed=7))
    return out


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """One Prefect server for the module's deployment tests (starting one takes seconds)."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-server")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: httpx.get(f"{api}/health").status_code == 200, 120, "prefect server")
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def prefect_server(prefect_api):
    """The module's server, without the `refresh/nightly` deployment a test registered on it."""
    yield prefect_api
    wait_for(lambda: forget_deployment(prefect_api), 60, "the deployment to be deleted")


def forget_deployment(api: str) -> bool:
    found = httpx.get(f"{api}/deployments/name/refresh/nightly")
    if found.status_code == 404:
        return True
    response = httpx.delete(f"{api}/deployments/{found.json()['id']}")
    return response.status_code in (204, 404)


def test_the_nightly_deployment_is_scheduled_and_runs_on_a_prefect_server(
    prefect_server, small_compendium, tmp_path
):
    api, compendium = prefect_server, small_compendium
    db = tmp_path / "w.duckdb"
    env = checkout_env(PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "prefect-client"))
    code = f"from flows.refresh import serve; serve({str(compendium)!r}, {str(db)!r}, '0 3 * * *')"
    served = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deployment = nightly_deployment(api)
        crons = [s["schedule"].get("cron") for s in deployment["schedules"]]
        assert crons == ["0 3 * * *"]
        # The server's SQLite can answer "database is locked" under load: retry until a run exists.
        run_id = wait_for(
            lambda: (
                httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={})
                .json()
                .get("id")
            ),
            60,
            "a flow run to be created",
        )

        def finished():
            state = (httpx.get(f"{api}/flow_runs/{run_id}").json().get("state") or {}).get("type")
            return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        assert wait_for(finished, 300, "the triggered run") == "COMPLETED"
    finally:
        served.terminate()
        served.wait(timeout=30)
    done = Warehouse.open(db).scalar("SELECT count(*) FROM core.de_runs WHERE status = 'done'")
    assert done > 0


def test_a_served_deployment_takes_no_paths_from_a_run(prefect_server, small_compendium, tmp_path):
    api, compendium = prefect_server, small_compendium
    served = tmp_path / "served"
    served.mkdir()
    victim = tmp_path / "victim.conf"
    victim.write_text("precious = true\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = cli_command("refresh", str(compendium), "--db", str(served / "w.duckdb"))
    command += ["--report", str(served / "report.html"), "--serve", "0 3 * * *"]
    env = checkout_env(PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "prefect-client"))
    serving = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deployment = nightly_deployment(api)
        # The run's parameters are options that cannot reach the file system.
        schema = deployment["parameter_openapi_schema"]["properties"]
        assert set(schema) == {"retrain", "neurons", "layers", "epochs", "representation"}
        overrides = {
            "report": str(victim),
            "db_path": str(elsewhere / "w.duckdb"),
            "source_dir": str(elsewhere),
        }
        url = f"{api}/deployments/{deployment['id']}/create_flow_run"

        def try_to_run():
            response = httpx.post(url, json={"parameters": overrides})
            if response.status_code == 409 or response.status_code >= 500:  # SQLite busy
                return None
            return response

        response = wait_for(try_to_run, 60, "the server to answer")
        if response.is_success:  # accepted by the API: the run itself must refuse them
            run_id = response.json()["id"]

            def finished():
                state = httpx.get(f"{api}/flow_runs/{run_id}").json().get("state") or {}
                return state if state.get("type") in TERMINAL else None

            state = wait_for(finished, 300, "the run with overrides")
            assert state["type"] != "COMPLETED", state
        else:
            assert response.status_code in (400, 409, 422), response.text
    finally:
        serving.terminate()
        serving.wait(timeout=30)
    assert victim.read_text() == "precious = true\n"
    assert list(elsewhere.iterdir()) == []
    assert not (served / "w.duckdb").exists() and not (served / "report.html").exists()
