"""The temporary Prefect server of one command, which dies with the command that started it.

Without `PREFECT_API_URL`, Prefect starts a temporary API server (uvicorn, about 200 MB) the
first time a flow needs one, and stops it at exit, but not when the command is killed: SIGKILL
runs no exit handler, and the server is left running under PID 1. For a `degae-tools`
command, the CLI asks (`manage()`) that the temporary server be started with a parent-death
signal (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`): the kernel stops it when the command's
process ends, however it ends. SIGKILL, not SIGTERM: a server told to stop while it is still
starting finished its startup first and outlived the command by up to 20 s, and with the
command gone no client is left for a graceful stop to serve (its SQLite database commits
atomically, so a killed server loses nothing committed). Starting it is announced on one line.

Each flow run the command makes is tagged with the command's process (`degae-pid:…`), and
when a later command starts its server, runs still RUNNING or PENDING whose process is gone
(killed mid-run) are marked CRASHED, so the Prefect UI does not show them running forever.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SERVER_MODULE = "prefect.server.api.server"
TAG = "degae-cli"
PID_TAG = "degae-pid:"
PR_SET_PDEATHSIG = 1
ACTIVE = ("RUNNING", "PENDING")


def manage() -> None:
    """Make Prefect's temporary server, if this process starts one, die with this process.

    Cheap: nothing is imported until Prefect itself imports its server module."""
    if os.environ.get("PREFECT_API_URL"):
        return
    module = sys.modules.get(SERVER_MODULE)
    if module is not None:
        _adopt(module)
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `_adopt` on Prefect's server module right after Prefect imports it (the
    post-import hook pattern of `wrapt`)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != SERVER_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _adopt(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _adopt(module: ModuleType) -> None:
    """Give Prefect's server module a `subprocess` whose children die with this process, and
    announce and tidy up around its `start`."""
    server_class = module.SubprocessASGIServer
    if getattr(server_class, "_degae_managed", False):
        return
    module.subprocess = _DieWithParent()
    start = server_class.start

    def start_and_tidy(self: Any, timeout: int | None = None) -> None:
        fresh = not self.running
        start(self, timeout)
        if fresh:
            _announce(self.api_url)
            mark_crashed(self.api_url)
        _tag_runs()

    server_class.start = start_and_tidy
    server_class._degae_managed = True
    logging.getLogger("prefect").addFilter(_WithoutServerChatter())


class _DieWithParent:
    """The `subprocess` module, but `Popen`'s children get SIGTERM when this process ends."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:  # noqa: N802  (subprocess's name)
        kwargs.setdefault("preexec_fn", parent_death_signal())
        return subprocess.Popen(*args, **kwargs)


def parent_death_signal(sig: int = signal.SIGKILL) -> Any:
    """A `preexec_fn`: the child gets `sig` when the thread that started it ends (for the CLI,
    its main thread: the process). None where prctl does not exist (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    parent = os.getpid()

    def set_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return set_signal


class _WithoutServerChatter(logging.Filter):
    """Prefect's own two lines about the temporary server; `_announce` says it in one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "temporary server" not in record.getMessage()


def _announce(api_url: str) -> None:
    """One line on stderr (unwrapped), unless the command was asked to be quiet."""
    from degae_tools import console

    if not (console.mode.quiet or console.mode.json):
        print(
            f"started a temporary Prefect server at {api_url} for this command; set "
            "PREFECT_API_URL to use a running one (`prefect server start`)",
            file=sys.stderr,
            flush=True,
        )


# --- flow runs of killed commands -------------------------------------------------------------


def process_tag(pid: int | None = None) -> str:
    """`degae-pid:<host>:<pid>:<start time>`: which process a flow run belongs to (the start
    time tells a reused PID apart)."""
    pid = os.getpid() if pid is None else pid
    return f"{PID_TAG}{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc), '' when it has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] == "Z" else fields[19]  # state, then starttime (field 22)


def is_alive(tag: str) -> bool:
    """Whether the process a `process_tag` names still runs (on another host: assumed so)."""
    host, pid, ticks = tag.removeprefix(PID_TAG).rsplit(":", 2)
    if host != socket.gethostname():
        return True
    return _start_ticks(int(pid)) == ticks


def _tag_runs() -> None:
    """Tag every flow run this process creates from now on with its process."""
    from prefect.context import TagsContext

    current = TagsContext.get().current_tags
    TagsContext(current_tags={*current, TAG, process_tag()}).__enter__()


def mark_crashed(api_url: str) -> list[str]:
    """Mark CRASHED the degae flow runs still RUNNING or PENDING whose command is gone;
    returns their ids. A server that does not answer is left alone."""
    import httpx

    query = {
        "flow_runs": {"tags": {"all_": [TAG]}, "state": {"type": {"any_": list(ACTIVE)}}},
        "limit": 200,
    }
    crashed = []
    try:
        with httpx.Client(base_url=api_url, timeout=10) as client:
            runs = client.post("/flow_runs/filter", json=query).json()
            for run in runs:
                tags = [t for t in run.get("tags", []) if t.startswith(PID_TAG)]
                if not tags or any(is_alive(t) for t in tags):
                    continue
                pid = tags[0].rsplit(":", 2)[1]
                state = {
                    "type": "CRASHED",
                    "name": "Crashed",
                    "message": f"the degae-tools command running it (PID {pid}) was killed",
                }
                client.post(
                    f"/flow_runs/{run['id']}/set_state", json={"state": state, "force": True}
                )
                crashed.append(run["id"])
    except (httpx.HTTPError, ValueError):
        return crashed
    return crashed
