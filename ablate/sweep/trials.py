"""What the Optuna storage says about a study's runs: one place that reads trial states.

Everything about progress is derived from the storage (never from local files),
so every worker on every machine agrees on what is done.

A trial's *kind*:
  done     COMPLETE
  pruned   PRUNED by the median rule (tune phase)
  failed   FAIL with a recorded error: the run itself failed; retried only by ``--retry-failed``
           (which lists it in the Optuna study's user attribute "retried": then it is ignored)
  skipped  FAIL marked "skipped": a worker found the work already taken (see claim rules)
  lost     FAIL without error: the worker was killed or interrupted; the run is redone
  running  RUNNING (may be stale until the heartbeat grace period has passed)
  waiting  WAITING in the queue
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

LIVE = ("running", "waiting")


def kind(t: FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "done"
    if t.state == TrialState.PRUNED:
        return "pruned"
    if t.state == TrialState.RUNNING:
        return "running"
    if t.state == TrialState.WAITING:
        return "waiting"
    if "skipped" in t.user_attrs:
        return "skipped"
    return "failed" if "error" in t.user_attrs else "lost"


RETRIED = "retried"


def without_retried(trials: list[FrozenTrial], study_user_attrs: dict) -> list[FrozenTrial]:
    """The trials less the failed ones that were re-queued (``mark_retried``)."""
    retried = set(study_user_attrs.get(RETRIED) or ())
    return [t for t in trials if t.number not in retried] if retried else trials


def mark_retried(study: optuna.Study, numbers: list[int]) -> None:
    """Failed trials no longer settle their slot; finished trials cannot be edited, so the study holds the list."""
    study.set_user_attr(RETRIED, sorted(set(study.user_attrs.get(RETRIED) or ()) | set(numbers)))


def origin(t: FrozenTrial) -> int:
    """The trial number a retry stands for (RetryHeartbeatStaleTrialCallback keeps it)."""
    return int(t.system_attrs.get("failed_trial", t.number))


def queued_value(t: FrozenTrial, name: str):
    """A parameter fixed by enqueue_trial (or already set on a retried copy)."""
    if name in t.params:
        return t.params[name]
    return (t.system_attrs.get("fixed_params") or {}).get(name)


SEED_RANGE = (0, 2**32 - 1)  # every seed a study may list (load_study refuses others)


def suggest_seed(trial, me: FrozenTrial, trials: list[FrozenTrial]) -> int:
    """Record the seed a seed-phase trial was queued for as its parameter ``seed``, over one fixed integer
    range, so a study can grow its seeds: a categorical over the study's seeds could not (Optuna refuses a
    categorical whose choices change). Run directories of older versions keep their categorical."""
    from optuna.distributions import CategoricalDistribution

    seed = int(queued_value(me, "seed"))
    older = next((t.distributions["seed"] for t in trials if "seed" in t.distributions), None)
    if isinstance(older, CategoricalDistribution):
        if seed not in older.choices:
            from ablate.errors import StudyError

            raise StudyError(f"this run directory was made by an older ablate whose seed list cannot grow (seed "
                             f"{seed} is new): run the grown study with --fork or another --out")
        return int(trial.suggest_categorical("seed", older.choices))
    return int(trial.suggest_int("seed", *SEED_RANGE))


def tune_counts(trials: list[FrozenTrial]) -> dict:
    counts = dict.fromkeys(("done", "pruned", "failed", "skipped", "lost", "running", "waiting"), 0)
    for t in trials:
        counts[kind(t)] += 1
    counts["finished"] = counts["done"] + counts["pruned"]
    return counts


def tune_finished(trials: list[FrozenTrial], budget: int) -> bool:
    """Budget reached (COMPLETE + PRUNED), or as many errors as the budget: stop trying."""
    c = tune_counts(trials)
    return c["finished"] >= budget or c["failed"] >= budget


def tune_has_room(trials: list[FrozenTrial], budget: int) -> bool:
    c = tune_counts(trials)
    return not tune_finished(trials, budget) and c["finished"] + c["running"] < budget


def tune_excess(trials: list[FrozenTrial], me: FrozenTrial, budget: int) -> bool:
    """Two workers may start the last slot together; the higher-numbered one stands down.

    Counting only lower-numbered trials makes every worker reach the same decision.
    """
    ahead = [t for t in trials if t.number < me.number and kind(t) in ("done", "pruned", *LIVE)]
    return len(ahead) >= budget


def best_trial(trials: list[FrozenTrial]) -> FrozenTrial | None:
    complete = [t for t in trials if kind(t) == "done" and t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def slot_state(trials: list[FrozenTrial], name: str, value) -> str:
    """State of one queued slot (a seed, the latency round set): settled, live or open."""
    kinds = {kind(t) for t in trials if queued_value(t, name) == value}
    if kinds & {"done", "failed"}:
        return "settled"
    if kinds & set(LIVE):
        return "live"
    return "open"


def slot_taken(trials: list[FrozenTrial], me: FrozenTrial, name: str, value) -> bool:
    """Another trial owns this slot: it settled it, or it is live and was queued before me.

    ``enqueue_trial`` can queue the same slot twice when two workers start together
    (Optuna documents this); the lowest-numbered live copy wins, the others stand down.
    """
    for t in trials:
        if t.number == me.number or queued_value(t, name) != value:
            continue
        k = kind(t)
        if k in ("done", "failed") or (k in LIVE and t.number < me.number):
            return True
    return False


def fail_stale(study: optuna.Study) -> None:
    """Mark trials of killed workers failed; the storage's retry callback re-queues them."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
