"""Pieces around one Optuna trial run by a sweep worker: the outcomes that are not results (``Skip``,
``RunFailed``), the per-trial-seeded sampler, the pop lock, the error guard around an objective,
``suggest`` from a search-space distribution, and the one-line messages they print."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from ablate.errors import AblateError, StudyError


class RunFailed(Exception):
    """The run finished with status 'failed'; its error is on the trial and in results.csv."""


class Skip(Exception):
    """This worker stands down: another one owns the work (see ablate/sweep/trials.py)."""


class TrialSeededTPE:
    """TPE seeded from each trial's own number (``seed + trial.number``), not from the history's length.

    Trial numbers are unique in a study, so two workers asking at the same moment draw different
    settings, and a resumed sweep does not replay its draws; the same study reproduces the same draws
    for the same trial numbers. Delegates everything to a fresh ``TPESampler`` made in ``before_trial``.
    """

    def __init__(self, seed: int):
        import optuna

        self.seed = int(seed)
        self._tpe = optuna.samplers.TPESampler(seed=self.seed)

    def before_trial(self, study, trial) -> None:
        import optuna

        self._tpe = optuna.samplers.TPESampler(seed=self.seed + trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()


class PopLock:
    """Serialises Optuna's pop of a WAITING trial among the workers of one run directory.

    With SQLite, Optuna's WAITING -> RUNNING switch is read-then-write in two transactions (pysqlite
    begins a transaction only at the UPDATE; SQLite ignores FOR UPDATE), so two workers starting at
    the same instant can pop the same trial and both run it ("Cannot tell a COMPLETE trial"). An
    exclusive file lock held from before the pop until the objective starts closes that window for
    every worker on this machine; other machines use a server database, whose FOR UPDATE holds.
    """

    def __init__(self, path: Path):
        self.path, self._file = path, None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (one worker per run directory there)
            return
        self._file = open(self.path, "a")  # noqa: SIM115 (held across calls)
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _guarded(objective, fatal: list, *, verbose: bool = False, started=None):
    """Unexpected errors are recorded on the trial, so it counts as failed (settled), not lost (redone).

    User errors (AblateError) are not the run's fault: they go to ``fatal`` and leave the trial lost.
    """
    import optuna

    def run(trial):
        if started is not None:
            started()
        try:
            return objective(trial)
        except (Skip, RunFailed, optuna.TrialPruned):
            raise
        except AblateError as exc:
            fatal.append(exc)
            raise
        except Exception as exc:
            trial.set_user_attr("error", _one_line(exc))
            where = f"\n{traceback.format_exc(limit=-3)}" if verbose else ""
            _say(f"trial failed (recorded; the study goes on; -v shows where): {_one_line(exc)}{where}")
            raise

    return run


def suggest(trial, name: str, dist):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise StudyError(f"search space {name}: unsupported distribution {type(dist).__name__}")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
