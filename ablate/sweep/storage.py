"""The Optuna storage a study's workers share: URL, driver, connection, study names.

Every worker, on this machine or another, talks to the study through this one
storage; progress is read from it (``ablate.sweep.trials``), never from local files.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from datetime import datetime, timedelta, timezone
from functools import cache

from ablate.errors import ConfigError
from ablate.rundir import sqlite_url
from ablate.study.definition import Study, run_dir_name

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
                return _storage_class()(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except ImportError:
            raise
        except Exception:  # workers starting together on a fresh database race to create its tables
            if attempt == 5:
                raise
            time.sleep(0.5 * (attempt + 1))


@cache
def _storage_class():
    """RDBStorage that also counts as stale a RUNNING trial that never beat and is older than the grace
    period: a worker killed between creating its trial and its first heartbeat (Optuna skips those, so
    the study would wait for it forever)."""
    import optuna
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    class Storage(optuna.storages.RDBStorage):
        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            stale = super()._get_stale_trial_ids(study_id)
            grace = self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval
            with optuna.storages._rdb.storage._create_scoped_session(self.scoped_session, True) as session:
                silent = (session.query(models.TrialModel)
                          .filter(models.TrialModel.state == TrialState.RUNNING)
                          .filter(models.TrialModel.study_id == study_id)
                          .filter(~models.TrialModel.heartbeats.any())
                          .all())
                for t in silent:  # datetime_start: aware UTC (Optuna >= 5) or the worker's naive local time
                    start = t.datetime_start
                    now = datetime.now(timezone.utc) if start is not None and start.tzinfo else datetime.now()
                    if start is not None and now - start > timedelta(seconds=grace) and t.trial_id not in stale:
                        stale.append(t.trial_id)
            return stale

    return Storage


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
