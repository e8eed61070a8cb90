"""Where a search keeps its study: the output folder, the Optuna storage, the study, the sampler.

The default storage is an SQLite file in --out; a postgresql:// URL lets workers on many
machines share one study. Storages send heartbeats, so a trial whose worker died is failed (and
its parameters queued once more) by the next worker that looks.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from spikeforge.search_space import OBJECTIVES, SearchError, one_line

# A trial whose worker died runs once more; one that kills its worker twice is dropped.
STALE_RETRIES = 1

if TYPE_CHECKING:
    from spikeforge.search import Plan


def claim_out(out: str, force: bool = False) -> Path:
    """The one place --out is checked and claimed (a folder `spikeforge search` keeps and continues).

    Uses the shared output-folder protection (spikeforge.outputs.claim_dir) where it exists;
    until it lands, refuses a non-empty folder that a search did not write (marker file below).
    """
    try:
        from spikeforge.outputs import claim_dir  # type: ignore[import-not-found]
    except ImportError:
        claim_dir = None
    if claim_dir is not None:
        from spikeforge.outputs import read_stamp, write_stamp  # type: ignore[import-not-found]

        legacy = Path(os.path.abspath(os.path.expanduser(out)))
        if (legacy / ".spikeforge-search").is_file() and read_stamp(legacy) is None:
            write_stamp(legacy, "search")  # a search folder from before the shared stamp existed
        return Path(claim_dir(out, "search", force=force))
    target = Path(os.path.abspath(os.path.expanduser(out)))
    marker = target / ".spikeforge-search"
    if target.exists() and not target.is_dir():
        raise SearchError(f"--out {out} is an existing file; give a new or empty folder")
    if target.is_dir() and any(target.iterdir()) and not marker.is_file():
        raise SearchError(f"--out {out} is a non-empty folder that spikeforge search did not write; "
                          "give a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return target


def storage_url(storage: str | None, out: Path) -> str:
    """The SQLAlchemy URL: an SQLite file in --out by default; postgresql:// picks an installed driver."""
    if storage is None:
        return f"sqlite:///{out / 'study.db'}"
    scheme = storage.split("://", 1)[0] if "://" in storage else ""
    if scheme.startswith("sqlite"):
        return storage
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        if scheme in ("postgresql", "postgres"):
            import importlib.util

            if importlib.util.find_spec("psycopg") is not None:
                return "postgresql+psycopg://" + storage.split("://", 1)[1]
            if importlib.util.find_spec("psycopg2") is None:
                raise SearchError("--storage postgresql://... needs a PostgreSQL driver; install it: "
                                  "pip install 'spikeforge[postgres]'")
            return "postgresql://" + storage.split("://", 1)[1]
        return storage
    if scheme.split("+")[0] == "mysql":
        return storage
    raise SearchError(f"--storage {redact(storage)!r}: give sqlite:///FILE or postgresql://USER@HOST:PORT/DB")


def redact(url: str) -> str:
    """The URL with its password hidden (for messages and search.json)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown without anything after the scheme
        return url.split("://", 1)[0] + "://..."


def open_storage(p: Plan):
    """The Optuna RDB storage with heartbeats; a stale trial is failed and its parameters queued once more."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    engine = {"connect_args": {"timeout": 60}} if p.storage_url.startswith("sqlite") else {
        # A small pool per worker (the trial thread plus the heartbeat thread): with many workers on one
        # server the default pool (5 + 10 overflow) exhausts PostgreSQL's max_connections (100 by default).
        "pool_pre_ping": True, "pool_size": 2, "max_overflow": 3}
    grace = p.opts.grace or 3 * p.opts.heartbeat
    try:
        return optuna.storages.RDBStorage(
            p.storage_url, engine_kwargs=engine, heartbeat_interval=p.opts.heartbeat, grace_period=grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=STALE_RETRIES))
    except Exception as exc:  # sqlalchemy/driver errors: one line, without the password
        raise SearchError(f"--storage {redact(p.storage_url)}: cannot open it ({type(exc).__name__}: "
                          f"{one_line(exc)[:300]})") from None


def open_study(p: Plan, storage, sampler=None, create: bool = False):
    """Create (or load) the study and refuse one that was started with other options."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [OBJECTIVES[o][0] for o in p.objectives]
    if create:
        study = optuna.create_study(storage=storage, study_name=p.study_name, directions=directions,
                                    sampler=sampler, load_if_exists=True)
        saved = study.user_attrs.get("spikeforge_search")
        if saved is None:
            study.set_user_attr("spikeforge_search", p.identity())
            study.set_metric_names(p.objectives)
        elif saved != p.identity():
            diff = sorted(k for k in set(saved) | set(p.identity()) if saved.get(k) != p.identity().get(k))
            if diff == ["code"]:
                raise SearchError(f"--study {p.study_name} was started by other spikeforge code (trainer, quantizer "
                                  "or cost model changed), so its figures would not compare; give a new --study")
            raise SearchError(f"--study {p.study_name} was started with other options ({', '.join(diff)} differ: "
                              f"{ {k: saved.get(k) for k in diff} }); rerun with those options or give a new --study")
        if [d.name.lower() for d in study.directions] != directions:
            raise SearchError(f"--study {p.study_name} optimises other directions; give a new --study")
        return study
    return optuna.load_study(study_name=p.study_name, storage=storage, sampler=sampler)


def make_sampler(p: Plan, worker: int, existing: int):
    """The sampler of one worker; its seed differs per worker and per resumption, so workers and
    reruns do not repeat each other's random start."""
    import optuna

    seed = int(hashlib.sha256(f"{p.opts.seed}:{worker}:{existing}".encode()).hexdigest()[:8], 16)
    # Constraints need no sampler option: each trial records them (Trial.set_constraint) and
    # Optuna's samplers and Pareto fronts read them from the trial.
    if p.opts.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, p.opts.trials // 2)))
    if p.opts.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                      n_startup_trials=max(4, min(10, p.opts.trials // 4)))
