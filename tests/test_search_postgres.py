"""Two workers share one study on a real PostgreSQL server; a worker killed mid-trial loses only
its running trial, and rerunning the same command completes the study.

The server is started by the test (initdb + pg_ctl in a temporary folder, 127.0.0.1, a free
port) and torn down after. It skips, saying why, only where no server or driver can be had
(.ci/run installs Debian's postgresql, `make venv` the driver).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pg_server
import pytest

from spikeforge.search_storage import STALE_RETRIES

optuna = pytest.importorskip("optuna")

CHEAP = ["--epochs", "1", "--images", "60", "--space", "hidden_width=32", "--space", "hidden_layers=1",
         "--space", "rows=2,4", "--space", "cols=2,4", "--verify-top", "0", "--heartbeat", "1", "--grace", "3"]
STUDY = "pg-two-workers"


@pytest.fixture(scope="module")
def server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("no PostgreSQL driver: pip install 'spikeforge[postgres]' (psycopg)")
    srv, why = pg_server.start()
    if srv is None:
        pytest.skip(why)
    yield srv
    srv.stop()


def _command(srv, out: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "spikeforge", "search", "--trials", str(trials), *CHEAP, "--workers", "2",
            "--storage", srv.url, "--study", STUDY, "--out", str(out)]


def _study(srv):
    return optuna.load_study(study_name=STUDY, storage=srv.url.replace("postgresql://", "postgresql+psycopg://"))


def _states(srv) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in _study(srv).get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _children(pid: int) -> set[int]:
    """The pids whose parent is `pid` (the workers of the command the test started)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _running(srv, pids: set[int]) -> list[int]:
    """Numbers of the RUNNING trials that these worker pids took."""
    found = []
    for t in _study(srv).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker", "")
        if ":" in worker and int(worker.rsplit(":", 1)[1]) in pids and "surplus" not in t.user_attrs:
            found.append(t.number)
    return found


def _wait_running(srv, pids: set[int], timeout: float = 120.0) -> int:
    """The pid of one of `pids` that is running a trial now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in _study(srv).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker", "")
            if ":" in worker and int(worker.rsplit(":", 1)[1]) in pids:
                return int(worker.rsplit(":", 1)[1])
        time.sleep(0.2)
    raise AssertionError("no worker of the command ran a trial in time")


def test_two_workers_share_one_study_and_survive_a_killed_worker(server, tmp_path):
    out_a, out_b = tmp_path / "machine-a", tmp_path / "machine-b"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # 1. Two workers complete 8 trials of one study: 8 distinct COMPLETE trials, none lost.
    run = subprocess.run(_command(server, out_a, 8), capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    study = _study(server)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 8 and len({t.number for t in complete}) == 8
    assert set(_states(server)) <= {"COMPLETE", "PRUNED"}  # pruned: surplus trials of a last-trial race
    assert all(t.user_attrs.get("surplus") for t in study.trials if t.state.name == "PRUNED")
    workers = {t.user_attrs["worker"] for t in complete}
    assert len(workers) == 2, workers  # both workers took trials
    folders = sorted(p.name for p in (out_a / "trials" / STUDY).iterdir() if not p.name.startswith("."))
    assert folders == [f"{t.number:05d}" for t in sorted(complete, key=lambda t: t.number)]
    reported = [line for line in run.stdout.splitlines() if line.startswith("trial ")]
    assert sorted(int(line.split()[1]) for line in reported) == sorted(t.number for t in complete)

    # 2. The same study from "another machine" (another --out), 4 more trials: one worker is
    # killed mid-trial, then the whole command (the machine goes away) mid-trial.
    proc = subprocess.Popen(_command(server, out_b, 12), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (spawned := _children(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers_b = spawned | {proc.pid}  # the command's own process is worker 0
        victim = _wait_running(server, spawned)
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.3)
        killed = _running(server, {victim})  # what it was running stays RUNNING until seen stale
        assert len(killed) == 1, killed
        # The other worker goes on: it completes a trial after the kill.
        before = len(_study(server).get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
        deadline = time.monotonic() + 120
        while len(_study(server).get_trials(states=(optuna.trial.TrialState.COMPLETE,))) <= before:
            assert time.monotonic() < deadline, "the surviving worker completed no trial"
            time.sleep(0.2)
        # Kill the command while a worker is inside a trial: stop it first, so that a trial that
        # finishes between the check and the kill cannot leave nothing RUNNING (the race of a fast
        # trial); if none is running at the stop, let it go on and look again.
        deadline = time.monotonic() + 120
        while True:
            _wait_running(server, workers_b - {victim})
            os.killpg(proc.pid, signal.SIGSTOP)
            time.sleep(0.3)
            running = _running(server, workers_b - {victim})
            if running or time.monotonic() > deadline:
                break
            os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGKILL)
        killed += running
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert len(killed) == 2, killed
    assert len(_study(server).get_trials(states=(optuna.trial.TrialState.COMPLETE,))) < 12

    # 3. Rerunning the same command completes the study; the killed trials are FAIL, never left
    # RUNNING, and their parameters ran again.
    rerun = subprocess.run(_command(server, out_b, 12), capture_output=True, text=True, timeout=600, env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    study = _study(server)
    states = _states(server)
    assert states.get("COMPLETE") == 12 and "RUNNING" not in states and "WAITING" not in states
    for number in killed:
        dead = study.trials[number]
        assert dead.state.name == "FAIL" and dead.number == number
        # Its parameters are queued once more, unless it was already a retry (STALE_RETRIES).
        history = dead.system_attrs.get("retry_history", [])
        retries = [t for t in study.trials if number in t.system_attrs.get("retry_history", [])]
        if len(history) < STALE_RETRIES:
            assert len(retries) == 1 and {k: retries[0].params.get(k) for k in dead.params} == dead.params
        else:
            assert retries == []
    numbers = [t.number for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    assert len(set(numbers)) == 12
    # The killed trials' half-built folders are gone; each trial this machine completed has its own.
    entries = {p.name for p in (out_b / "trials" / STUDY).iterdir()}
    assert not [e for e in entries if e.startswith(".")], entries
    assert entries and entries <= {f"{n:05d}" for n in numbers}
