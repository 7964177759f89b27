"""``ablate run``: tune each variant, train its best settings once per seed, measure latency.

Distribution uses Optuna's own machinery only. Each (variant, phase) is an
Optuna study in one storage. Phase 1 asks new trials while the variant's
budget of finished (COMPLETE + PRUNED) trials is not reached. Phase 2 and the
latency step are queued with ``enqueue_trial``; workers pop WAITING trials
(Optuna switches WAITING -> RUNNING atomically in the storage). Heartbeats
plus ``RetryHeartbeatStaleTrialCallback`` re-queue the run of a killed worker.
The few races Optuna leaves open (two workers queueing the same seed, or
starting the last tuning slot together) are settled by trial number, see
ablate/sweep/trials.py. Each worker calls ``optimize(n_trials=1)`` in a loop and
re-reads the storage in between, so any number of workers can join or leave.

``Sweep`` is the loop; its parts live beside it as mixins: ``objectives`` (tune/seed/latency objectives,
settling and sharing runs), ``packing`` (--pack-seeds), ``gate`` (--until-settled), ``recording`` (training
one run and recording it; ``prepare_run_dir``); ``optimize`` holds the Optuna pieces they share.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

from ablate.errors import AblateError, StudyError, SystematicFailure
from ablate.rundir import RunDir, is_disk_full
from ablate.study.definition import Study
from ablate.sweep import trials as T
from ablate.sweep.gate import SeedGateMixin
from ablate.sweep.objectives import ObjectivesMixin
from ablate.sweep.optimize import PopLock, RunFailed, Skip, TrialSeededTPE, _guarded, suggest
from ablate.sweep.packing import PackingMixin
from ablate.sweep.recording import RecordingMixin, prepare_run_dir
from ablate.sweep.storage import make_storage, optuna_name

__all__ = ["KEEP_CHECKPOINTS", "PopLock", "RunFailed", "Skip", "Sweep", "TrialSeededTPE", "load_backend",
           "prepare_run_dir", "suggest"]

KEEP_CHECKPOINTS = ("seeds", "all", "none")


def load_backend():
    """(train_run, measure_study_latency). $ABLATE_TRAINER=module swaps both, for fast tests."""
    name = os.environ.get("ABLATE_TRAINER")
    if name:
        module = importlib.import_module(name)
        return module.train_run, module.measure_study_latency
    from ablate.engine import train_run
    from ablate.engine.latency import measure_study_latency

    return train_run, measure_study_latency


class Sweep(SeedGateMixin, ObjectivesMixin, PackingMixin, RecordingMixin):
    """One worker of a study. ``run()`` returns when every run is settled (or taken by others).

    Progress: bars on a terminal; off a terminal (logs, CI) one line per finished run on stderr,
    and one per epoch with ``verbose``. ``keep_checkpoints``: ``seeds`` (the final weights of each
    seed run, default), ``all`` (tuning trials too) or ``none``.
    """

    def __init__(self, study: Study, run_dir: RunDir, *, storage_url: str | None = None, data: str | None = None,
                 device: str | None = None, heartbeat: int = 10, poll: float | None = None,
                 progress: bool = True, verbose: bool = False, keep_checkpoints: str = "seeds", backend=None,
                 seed_gate=None, pack_seeds: int | str = "auto"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # our bar and rows say it better
        if keep_checkpoints not in KEEP_CHECKPOINTS:
            raise StudyError(f"keep_checkpoints: expected one of {', '.join(KEEP_CHECKPOINTS)}, got {keep_checkpoints!r}")
        self.study, self.run_dir = study, run_dir
        self.storage = make_storage(storage_url or run_dir.storage_url(), heartbeat=heartbeat)
        self.data_arg, self.device = data, device
        # nested bars only where a terminal redraws them; workers of `--workers N` share one terminal: lines
        self.bars = progress and sys.stderr.isatty() and not os.environ.get("ABLATE_WORKER")
        self.lines = progress and not self.bars
        self.progress = self.bars  # what train_run is told: its own bars
        self.verbose, self.keep_checkpoints = verbose, keep_checkpoints
        self.poll = poll if poll is not None else max(1.0, heartbeat / 2)
        self.train_run, self.measure_latency = backend or load_backend()
        self._studies: dict[str, optuna.Study] = {}
        self._data_root: Path | None = None
        self._layout = None
        self._skipped = False
        self._pop_lock = PopLock(run_dir.root / ".pop.lock")
        # --until-settled: seed_gate(run_dir_root) -> how many of study.seeds to schedule, decided from
        # the recorded runs (the CLI builds it from analysis; this package never imports analysis)
        self.seed_gate = seed_gate
        # seed packing (ablate.engine.packed): "auto" asks suggested_pack_size per variant (1 on CPU); K forces it
        if pack_seeds != "auto" and not (isinstance(pack_seeds, int) and pack_seeds >= 1):
            raise StudyError(f"pack_seeds: expected a whole number >= 1 or 'auto', got {pack_seeds!r}")
        self.pack_seeds = pack_seeds
        self._pack_sizes: dict[str, int] = {}
        self._n_active: int | None = None
        self._gate_seen: int | None = None  # n_active at which the gate last saw every scheduled seed settled

    # --- storage ------------------------------------------------------------------------
    def optuna_study(self, variant: str | None, phase: str):
        import optuna

        name = optuna_name(self.study, variant, phase)
        if name not in self._studies:
            self._studies[name] = optuna.create_study(
                storage=self.storage, study_name=name, direction="maximize", load_if_exists=True,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, self.study.trials // 3)),
                                                   n_warmup_steps=1),
            )
        return self._studies[name]

    def trials(self, variant: str | None, phase: str):
        """The phase's trials, less failed ones that ``retry_failed`` re-queued."""
        study = self.optuna_study(variant, phase)
        return T.without_retried(study.get_trials(deepcopy=False), study.user_attrs)

    def phases(self):
        """(variant, phase) of every Optuna study this study uses, latency last."""
        for v in self.study.variants:
            yield from ((v, p) for p in (("tune", "seed") if self.study.tunes(v) else ("seed",)))
        yield None, "latency"

    def retry_failed(self) -> int:
        """Re-queue every failed run: it no longer counts as settled, and its record is removed."""
        count = 0
        for variant, phase in self.phases():
            study = self.optuna_study(variant, phase)
            failed = [t for t in self.trials(variant, phase) if T.kind(t) == "failed"]
            if not failed:
                continue
            T.mark_retried(study, [t.number for t in failed])
            for t in failed:
                key = t.user_attrs.get("run_id") or ("latency" if phase == "latency" else None)
                if key:
                    self.run_dir.record_path(key).unlink(missing_ok=True)
            count += len(failed)
        self.run_dir.rebuild_tables()
        return count

    def _remeasure_latency_for_new_variants(self) -> None:
        """A study that gained variants after its latency was measured measures it again, every variant together
        (speed is compared within launches, in one randomised order)."""
        done = [t for t in self.trials(None, "latency") if T.kind(t) == "done"]
        measured = {r.get("variant") for t in done for r in (t.user_attrs.get("latency_rows") or [])}
        if done and set(self.study.variants) - measured:
            T.mark_retried(self.optuna_study(None, "latency"), [t.number for t in done])
            self.run_dir.record_path("latency").unlink(missing_ok=True)
            self.run_dir.latency_csv.unlink(missing_ok=True)

    def failed_runs(self) -> list[tuple[str, str, str]]:
        """``(run, phase, error)`` of every failed run (the latency phase's run is named ``latency``)."""
        return [(t.user_attrs.get("run_id") or phase, phase, t.user_attrs.get("error") or "failed")
                for v, phase in self.phases() for t in self.trials(v, phase) if T.kind(t) == "failed"]

    # --- the loop -----------------------------------------------------------------------
    def total_runs(self) -> int:
        s = self.study
        return sum(s.trials for v in s.variants if s.tunes(v)) + len(s.seeds) * len(s.variants) + 1

    def done_runs(self) -> int:
        s, n = self.study, 0
        for v in s.variants:
            if s.tunes(v):
                c = T.tune_counts(self.trials(v, "tune"))
                n += min(s.trials, c["finished"] + c["failed"])
            seeds = self.trials(v, "seed")
            n += sum(T.slot_state(seeds, "seed", seed) == "settled" for seed in s.seeds)
        return n + (T.slot_state(self.trials(None, "latency"), "round_set", 0) == "settled")

    def run(self) -> None:
        from tqdm.auto import tqdm

        self.check_data()  # a missing or malformed dataset is the user's to fix: fail now, not once per run
        self._remeasure_latency_for_new_variants()
        bar = tqdm(total=self.total_runs(), desc=self.study.name, unit="run", disable=not self.bars,
                   dynamic_ncols=True, position=0)
        try:
            self._loop(bar)
        except AblateError:
            raise
        except Exception as exc:
            if is_disk_full(exc):
                raise self._disk_full(exc) from None
            raise
        finally:
            bar.close()
            failing = sys.exc_info()[0] is not None
            try:  # runs done on other machines (one --storage, a run directory each)
                self.import_shared()
                self.run_dir.rebuild_tables()
            except Exception as exc:
                if not failing:  # else the first error is the one to report
                    if is_disk_full(exc):
                        raise self._disk_full(exc) from None
                    raise

    def _loop(self, bar) -> None:
        while True:
            bar.n = self.done_runs()
            bar.refresh()
            step = self.next_step()
            if step is None:  # runs of killed workers become WAITING again: look once more
                self.fail_stale()
                step = self.next_step()
            if step is not None:
                bar.set_postfix_str(step[0])
                self._skipped = False
                step[1]()
                if self._skipped:  # another worker owns that work: give it a moment to show up as such
                    time.sleep(min(self.poll, 1.0))
                continue
            if not self.others_running():
                break
            bar.set_postfix_str("waiting for runs held by other workers")
            time.sleep(self.poll)

    def next_step(self):
        """(label, action) for the next piece of work this worker can take, or None."""
        s = self.study
        for v in s.variants:
            if s.tunes(v) and T.tune_has_room(self.trials(v, "tune"), s.trials):
                return f"tune {v}", lambda v=v: self._optimize(v, "tune", self._tune_objective(v))
        all_settled = True
        for seed in self.active_seeds():  # seed-major: a partial study holds complete pairs early
            for v in s.variants:
                if s.tunes(v) and not T.tune_finished(self.trials(v, "tune"), s.trials):
                    all_settled = False
                    continue
                state = T.slot_state(self.trials(v, "seed"), "seed", seed)
                all_settled &= state == "settled"
                if state == "open":
                    self._enqueue_seed(v, seed)
                    state = "live"
                if state == "live" and self._has_waiting(v, "seed"):
                    k = self.pack_size(v)
                    if k > 1:
                        return f"{v} seeds, {k} packed", lambda v=v, k=k: self._run_packed(v, k)
                    return f"{v} seed {seed}", lambda v=v: self._optimize(v, "seed", self._seed_objective(v))
        if all_settled:
            lat = self.trials(None, "latency")
            state = T.slot_state(lat, "round_set", 0)
            if state == "open":
                self.optuna_study(None, "latency").enqueue_trial({"round_set": 0})
            if state != "settled" and self._has_waiting(None, "latency"):
                return "latency", lambda: self._optimize(None, "latency", self._latency_objective)
        return None

    def fail_stale(self) -> None:
        """Runs whose worker stopped beating are failed; the storage's retry callback re-queues them.

        Under the pop lock: with SQLite, two workers failing the same stale run at once both see it
        RUNNING (no row locks, see ``PopLock``) and each re-queues a copy (seen as a flaky test).
        """
        self._pop_lock.acquire()
        try:
            for study in list(self._studies.values()):
                T.fail_stale(study)
        finally:
            self._pop_lock.release()

    def others_running(self) -> bool:
        # WAITING copies beyond a full budget are never needed; only RUNNING ones are worth waiting for.
        return any(T.kind(t) == "running" for study in list(self._studies.values())
                   for t in study.get_trials(deepcopy=False))

    def _skip(self) -> Skip:
        self._skipped = True
        return Skip()

    def _has_waiting(self, variant, phase) -> bool:
        return any(T.kind(t) == "waiting" for t in self.trials(variant, phase))

    def _optimize(self, variant, phase, objective) -> None:
        # One trial per call: the loop re-reads the storage before choosing the next piece of work.
        study = self.optuna_study(variant, phase)
        if phase == "tune" and not isinstance(study.sampler, TrialSeededTPE):
            study.sampler = TrialSeededTPE(self.study.sampler_seed + 7919 * list(self.study.variants).index(variant))
        fatal: list[AblateError] = []
        lock = self._pop_lock
        lock.acquire()  # released as soon as Optuna has popped (or asked) this worker's trial
        try:
            study.optimize(_guarded(objective, fatal, verbose=self.verbose, started=lock.release), n_trials=1,
                           catch=(Exception,))
        except Exception:
            if fatal:  # e.g. a full disk also failed Optuna's own bookkeeping: report the cause
                raise fatal[0] from None
            raise
        finally:
            lock.release()
        if fatal:  # the user's to fix (no weights, bad data, bad setting): stop; the run is redone on resume
            raise fatal[0]
        if variant is not None:
            self._stop_if_systematic(variant)

    def _stop_if_systematic(self, variant: str) -> None:
        """Every run of ``variant`` so far failed with one and the same error (at least two runs, or
        its only one): running its other runs would fail the same way, so stop and say why."""
        errors, ok = [], 0
        for phase in ("tune", "seed") if self.study.tunes(variant) else ("seed",):
            for t in self.trials(variant, phase):
                kind = T.kind(t)
                ok += kind in ("done", "pruned")
                if kind == "failed":
                    errors.append(t.user_attrs.get("error") or "failed")
        planned = (self.study.trials if self.study.tunes(variant) else 0) + len(self.study.seeds)
        if ok == 0 and len(errors) >= min(2, planned) and len(set(errors)) == 1:
            raise SystematicFailure(
                f"every run of {variant} failed the same way ({len(errors)} of {planned}): {errors[0]}; fix the "
                f"cause, then run the same command with --retry-failed")

    def _enqueue_seed(self, variant: str, seed: int) -> None:
        best = T.best_trial(self.trials(variant, "tune")) if self.study.tunes(variant) else None
        attrs = {"params": best.params if best else {}, "tuned_from": best.number if best else None}
        self.optuna_study(variant, "seed").enqueue_trial({"seed": seed}, user_attrs=attrs)

    # --- data and settings -------------------------------------------------------------------
    def data_root(self) -> Path:
        if self._data_root is None:
            from ablate.data.registry import dataset_root

            self._data_root = dataset_root(self.study.data, data=self.data_arg, workdir=self.run_dir.root)
        return self._data_root

    def layout(self):
        """The dataset opened: the study's ``data["layout"]``, else the layout detected in its folder."""
        if self._layout is None:
            from ablate.data.layouts import detect_layout

            self._layout = detect_layout(self.data_root(), layout=self.study.data.get("layout"),
                                         grouped=self.study.train.get("grouped", True))
        return self._layout

    def check_data(self) -> None:
        """Before any training: the dataset opens, the splits a run reads pair up, per-class claims name the
        dataset's classes; study.json records the layout and classes (outside the fingerprint)."""
        from ablate.data.check import check_before_compute
        from ablate.study.definition import validate_claim_classes

        layout = self.layout()
        validate_claim_classes(self.study, layout.class_names)
        check_before_compute(layout, sorted({"train", self.eval_split()} | ({"val"} & set(layout.splits()))))
        self.record_dataset(layout.describe())

    def eval_split(self) -> str:
        wanted = self.study.eval_split
        return wanted if wanted in self.layout().splits() else "val"

    def best_configs(self) -> dict[str, dict]:
        """Per variant: the TrainConfig fields its seed runs use (tuned best, or fixed settings)."""
        out = {}
        for v in self.study.variants:
            best = T.best_trial(self.trials(v, "tune")) if self.study.tunes(v) else None
            out[v] = self.study.train_settings(v, best.params if best else {}, seed=0)
        return out
