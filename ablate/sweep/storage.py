"""The Optuna storage a study's workers share: URL, driver, connection, study names.

Every worker, on this machine or another, talks to the study through this one
storage; progress is read from it (``ablate.sweep.trials``), never from local files.
"""

from __future__ import annotations

import importlib.util
import time
import warnings

from ablate.errors import ConfigError
from ablate.rundir import sqlite_url
from ablate.spec.study import Study, run_dir_name

__all__ = ["make_storage", "optuna_name", "sqlite_url", "with_db_driver"]


def make_storage(url: str, *, heartbeat: int):
    """RDBStorage with heartbeats; a run silent for 3 heartbeats is failed and re-queued (max 3 times)."""
    import optuna

    url = with_db_driver(url)
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(6):
        try:
            with warnings.catch_warnings():  # heartbeats and retries are "experimental" in Optuna, relied on here
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except ImportError:
            raise
        except Exception:  # workers starting together on a fresh database race to create its tables
            if attempt == 5:
                raise
            time.sleep(0.5 * (attempt + 1))


def with_db_driver(url: str) -> str:
    """postgresql:// means psycopg 3 to recent SQLAlchemy; use psycopg2 when only that is installed."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    rest = url.split("://", 1)[1]
    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module):
            return f"postgresql+{driver}://{rest}"
    raise ConfigError("--storage postgresql:// needs a driver: pip install psycopg2-binary (or ablate[postgres])")


def optuna_name(study: Study, variant: str | None, phase: str) -> str:
    # prefixed like the run directory, so presets never share Optuna studies in one storage
    prefix = run_dir_name(study)
    return f"{prefix}/latency" if phase == "latency" else f"{prefix}/{variant}/{phase}"
