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
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
import traceback
import warnings
from pathlib import Path

from ablate.errors import AblateError, DiskFullError, StudyError, SystematicFailure
from ablate.rundir import RunDir, ensure_writable_dir, is_disk_full
from ablate.spec.study import Study, resolved_study, run_dir_name
from ablate.sweep import trials as T
from ablate.sweep.storage import make_storage, optuna_name

KEEP_CHECKPOINTS = ("seeds", "all", "none")


class RunFailed(Exception):
    """The run finished with status 'failed'; its error is on the trial and in results.csv."""


class Skip(Exception):
    """This worker stands down: another one owns the work (see ablate/sweep/trials.py)."""


def load_backend():
    """(train_run, measure_study_latency). $ABLATE_TRAINER=module swaps both, for fast tests."""
    name = os.environ.get("ABLATE_TRAINER")
    if name:
        module = importlib.import_module(name)
        return module.train_run, module.measure_study_latency
    from ablate.engine import train_run
    from ablate.engine.latency import measure_study_latency

    return train_run, measure_study_latency


class Sweep:
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

    def failed_runs(self) -> list[str]:
        return [t.user_attrs.get("run_id") or phase for v, phase in self.phases()
                for t in self.trials(v, phase) if T.kind(t) == "failed"]

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

        self.data_root()  # a missing dataset is the user's to fix: fail now, not once per run
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

    def _disk_full(self, exc: BaseException) -> DiskFullError:
        where = getattr(exc, "filename", None)
        where = Path(where).parent if where else self.run_dir.root
        return DiskFullError(f"disk full: could not write under {where}; free space there and run the same "
                             f"command again (every run recorded so far is kept)")

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

    def active_seeds(self) -> list[int]:
        """The seeds to run: all of them, or under --until-settled the prefix the gate has opened so far."""
        seeds = self.study.seeds
        if self.seed_gate is None:
            return seeds
        if self._n_active is None:
            self._n_active = self._ask_gate()
        while self._gate_seen != self._n_active and self._seeds_settled(seeds[: self._n_active]):
            self._gate_seen = self._n_active
            self._n_active = max(self._n_active, self._ask_gate())  # the same number: the study stops here
        return seeds[: self._n_active]

    def _seeds_settled(self, seeds) -> bool:
        return all(T.slot_state(self.trials(v, "seed"), "seed", seed) == "settled"
                   for seed in seeds for v in self.study.variants)

    def _ask_gate(self) -> int:
        self.import_shared()  # runs finished by workers on other machines count too
        self.run_dir.rebuild_tables()
        return int(self.seed_gate(self.run_dir.root))

    def fail_stale(self) -> None:
        """Runs whose worker stopped beating are failed; the storage's retry callback re-queues them."""
        for study in list(self._studies.values()):
            T.fail_stale(study)

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
        import optuna

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

    # --- objectives -----------------------------------------------------------------------
    def _tune_objective(self, variant: str):
        def objective(trial):
            me = trial.study._storage.get_trial(trial._trial_id)
            if T.tune_excess(self.trials(variant, "tune"), me, self.study.trials):
                trial.set_user_attr("skipped", "tuning budget already taken")
                raise self._skip()
            params = {k: suggest(trial, k, d) for k, d in self.study.space(variant).items()}
            from ablate.engine.config import TrainConfig

            epochs = self.study.train_settings(variant, params, seed=0).get("epochs", TrainConfig.epochs)

            def on_epoch(epoch, metrics):
                from ablate.engine import Pruned

                trial.report(float(metrics.get("miou", float("nan"))), epoch)
                if epoch < epochs and trial.should_prune():  # after the last epoch there is nothing to save
                    raise Pruned(f"pruned by the median rule after epoch {epoch}")

            key = f"{variant}-tune-{T.origin(me)}"
            seed = self.study.seeds[0]  # tuning compares settings, so every trial shares one seed
            return self._run(trial, variant=variant, phase="tune", key=key, trial_no=T.origin(me), seed=seed,
                             params=params, eval_split="val", on_epoch=on_epoch)

        return objective

    def _seed_objective(self, variant: str):
        def objective(trial):
            me = trial.study._storage.get_trial(trial._trial_id)
            if "fixed_params" not in me.system_attrs:  # asked, not popped: the queue was emptied meanwhile
                trial.set_user_attr("skipped", "no queued seed left")
                raise self._skip()
            seed = trial.suggest_categorical("seed", self.study.seeds)
            if T.slot_taken(self.trials(variant, "seed"), me, "seed", seed):
                trial.set_user_attr("skipped", f"seed {seed} is taken by another trial")
                raise self._skip()
            return self._run(trial, variant=variant, phase="seed", key=f"{variant}-seed-{seed}", trial_no=None,
                             seed=seed, params=me.user_attrs.get("params") or {},
                             eval_split=self.eval_split(), on_epoch=None)

        return objective

    def _latency_objective(self, trial):
        me = trial.study._storage.get_trial(trial._trial_id)
        if "fixed_params" not in me.system_attrs or T.slot_taken(
                self.trials(None, "latency"), me, "round_set", 0):
            trial.set_user_attr("skipped", "latency is measured by another worker")
            raise self._skip()
        trial.suggest_categorical("round_set", [0])
        try:
            rows = self.measure_latency(self.study, configs=self.best_configs(), device=self.device or "auto")
        except Exception as exc:
            trial.set_user_attr("error", _one_line(exc))
            raise RunFailed(str(exc)) from exc
        try:
            self.run_dir.save_latency(rows)
        except OSError as exc:
            if is_disk_full(exc):
                raise self._disk_full(exc) from None
            raise
        trial.set_user_attr("latency_rows", json.loads(json.dumps(rows, default=float)))
        self._line(f"latency: {len(rows)} timings ({len({r['variant'] for r in rows})} models)")
        return 0.0

    # --- sharing through the storage --------------------------------------------------------
    def _share(self, trial, key: str) -> None:
        """Put the run's record (and its per-image confusions) in the storage as a user attribute,
        so a worker on any machine can rebuild complete tables (``import_shared``)."""
        record = self.run_dir.read_record(key)
        if record is not None:
            trial.set_user_attr("record", {**record, **self.run_dir.confusion_payload(key)})

    def import_shared(self) -> int:
        """Copy into this run directory every run that other workers recorded in the storage."""
        imported = 0
        for v in self.study.variants:
            for phase in ("tune", "seed") if self.study.tunes(v) else ("seed",):
                for t in self.trials(v, phase):
                    key, record = t.user_attrs.get("run_id"), t.user_attrs.get("record")
                    if key and record and self.run_dir.read_record(key) is None:
                        self.run_dir.import_record(key, record)
                        imported += 1
        if not self.run_dir.record_path("latency").exists():
            for t in self.trials(None, "latency"):
                if t.user_attrs.get("latency_rows"):
                    self.run_dir.import_record("latency", {"latency": t.user_attrs["latency_rows"]})
                    imported += 1
                    break
        return imported

    def _run(self, trial, *, variant, phase, key, trial_no, seed, params, eval_split, on_epoch) -> float:
        trial.set_user_attr("run_id", key)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # who ran it, for --list and audits
        record = self.run_dir.read_record(key)
        if record is None:  # a record means the run finished before its worker died: keep it
            row = self._train(variant=variant, phase=phase, key=key, trial_no=trial_no, seed=seed,
                              params=params, eval_split=eval_split, on_epoch=on_epoch)
        else:
            row = record["row"]
        status = self._settle(trial, key, row)
        if status == "failed":
            raise RunFailed(row.get("error"))
        if status == "pruned":
            import optuna

            raise optuna.TrialPruned(row.get("error") or "pruned")
        return float(row["miou"])

    def _settle(self, trial, key: str, row: dict) -> str:
        """Share the recorded run through the storage, say it, and return its status (failed: error on the trial)."""
        self._share(trial, key)
        miou = row.get("miou")
        miou = "-" if miou is None or miou != miou else f"{float(miou):.4f}"
        if self.lines:  # [settled before this one + 1 / total]: approximate while other workers run
            self._line(f"[{self.done_runs() + 1}/{self.total_runs()}] {key}: {row['status']}, mIoU {miou}"
                       + (f" ({row.get('error')})" if row.get("error") else ""))
        if row["status"] == "failed":
            trial.set_user_attr("error", row.get("error") or "failed")
        return row["status"]

    # --- seed packing ------------------------------------------------------------------------
    def pack_size(self, variant: str) -> int:
        """How many seeds of ``variant`` one worker trains packed: --pack-seeds K, or (auto) the engine's
        ``suggested_pack_size`` for the variant's seed runs (1 on CPU, 1 where packing does not apply)."""
        if self.pack_seeds != "auto":
            return int(self.pack_seeds)
        if variant not in self._pack_sizes:
            self._pack_sizes[variant] = self._suggested_pack_size(variant)
        return self._pack_sizes[variant]

    def _suggested_pack_size(self, variant: str) -> int:
        if len(self.study.seeds) < 2 or os.environ.get("ABLATE_TRAINER"):  # the test backends train one by one
            return 1
        from ablate.engine.config import TrainConfig
        from ablate.engine.packed import check_packable, suggested_pack_size

        best = T.best_trial(self.trials(variant, "tune")) if self.study.tunes(variant) else None
        cfgs = [TrainConfig.from_dict(self._seed_settings(variant, best.params if best else {}, seed))
                for seed in self.study.seeds[:2]]
        try:
            check_packable(cfgs)
        except AblateError:  # e.g. fp16: its loss scaler cannot be shared; train one by one
            return 1
        return suggested_pack_size(cfgs[0], seeds=len(self.study.seeds))

    def _seed_settings(self, variant: str, params: dict, seed: int) -> dict:
        settings = self.study.train_settings(variant, params, seed=seed)
        if self.device:
            settings["device"] = self.device
        return settings

    def _train_packed_backend(self):
        name = os.environ.get("ABLATE_TRAINER")
        if name:
            return importlib.import_module(name).train_runs_packed  # a fake backend must fake packing too
        from ablate.engine.packed import train_runs_packed

        return train_runs_packed

    def _run_packed(self, variant: str, k: int) -> None:
        """Claim up to ``k`` queued seeds of ``variant`` (under the pop lock), train them packed, record and tell
        each one as the single-seed path does. The claimed trials beat while they train, so a kill -9 leaves
        them stale: other workers (or a rerun) re-queue and redo them, as for a single run."""
        import optuna

        study = self.optuna_study(variant, "seed")
        for seed in self.active_seeds():  # queue every open seed of this variant, so one pack can hold k
            if T.slot_state(self.trials(variant, "seed"), "seed", seed) == "open":
                self._enqueue_seed(variant, seed)
        claimed = []  # (trial, seed, params)
        self._pop_lock.acquire()
        try:
            while len(claimed) < k and self._has_waiting(variant, "seed"):
                with warnings.catch_warnings():  # Optuna warns that heartbeats belong to optimize: _Heartbeat beats
                    warnings.simplefilter("ignore", UserWarning)
                    trial = study.ask()  # pops a WAITING trial (WAITING -> RUNNING)
                me = study._storage.get_trial(trial._trial_id)
                if "fixed_params" not in me.system_attrs:  # asked, not popped: the queue was emptied meanwhile
                    self._stand_down(study, trial, "no queued seed left")
                    break
                seed = trial.suggest_categorical("seed", self.study.seeds)
                if T.slot_taken(self.trials(variant, "seed"), me, "seed", seed):
                    self._stand_down(study, trial, f"seed {seed} is taken by another trial")
                    continue
                claimed.append((trial, seed, me.user_attrs.get("params") or {}))
        finally:
            self._pop_lock.release()
        if not claimed:
            self._skipped = True
            return
        with _Heartbeat(self.storage, [t._trial_id for t, _, _ in claimed]):
            rows = self._train_claimed(variant, claimed)
        for (trial, seed, _), row in zip(claimed, rows):
            status = self._settle(trial, f"{variant}-seed-{seed}", row)
            if status == "failed":
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            elif status == "pruned":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, float(row["miou"]))
        self._stop_if_systematic(variant)

    def _stand_down(self, study, trial, why: str) -> None:
        import optuna

        trial.set_user_attr("skipped", why)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def _train_claimed(self, variant: str, claimed: list) -> list[dict]:
        """Rows of the claimed seeds in order: recorded ones (a run finished before its worker died) are kept,
        the others train packed (seeds sharing their settings together)."""
        from ablate.engine.config import TrainConfig
        from ablate.engine.environment import utc_now

        rows: dict[int, dict] = {}
        todo: dict[str, list[int]] = {}  # settings (but the seed) -> indices into claimed
        for i, (trial, seed, params) in enumerate(claimed):
            key = f"{variant}-seed-{seed}"
            trial.set_user_attr("run_id", key)
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            record = self.run_dir.read_record(key)
            if record is not None:
                rows[i] = record["row"]
            else:
                todo.setdefault(json.dumps(params, sort_keys=True, default=str), []).append(i)
        eval_split = self.eval_split()
        for group in todo.values():
            if len(group) == 1:
                trial, seed, params = claimed[group[0]]
                rows[group[0]] = self._train(variant=variant, phase="seed", key=f"{variant}-seed-{seed}",
                                             trial_no=None, seed=seed, params=params, eval_split=eval_split,
                                             on_epoch=None)
                continue
            started = utc_now()
            settings = [self._seed_settings(variant, claimed[i][2], claimed[i][1]) for i in group]
            keys = [f"{variant}-seed-{claimed[i][1]}" for i in group]
            bases = [self._base_row(variant=variant, phase="seed", key=key, trial_no=None, seed=claimed[i][1],
                                    settings=st, eval_split=eval_split, started=started)
                     for i, key, st in zip(group, keys, settings)]
            failure = None
            try:
                trained = self._train_packed_backend()(
                    [TrainConfig.from_dict(st) for st in settings], data_root=self._data_root,
                    out_dir=self.run_dir.root, run_ids=keys, eval_split=eval_split, progress=self.progress,
                    study=self.study.name, variant=variant, phase="seed", trials=[None] * len(group),
                    save_checkpoint=self._keeps_checkpoint("seed"))
            except AblateError:
                raise
            except Exception as exc:  # every seed of the pack is recorded as failed; the study goes on
                row, failure = self._failed_row(exc, started)
                trained = [dict(row) for _ in group]
            for i, row, base in zip(group, trained, bases):
                rows[i] = self._record(row, base, failure)
        return [rows[i] for i in range(len(claimed))]

    def _train(self, *, variant, phase, key, trial_no, seed, params, eval_split, on_epoch) -> dict:
        from ablate.engine.config import TrainConfig
        from ablate.engine.environment import utc_now

        settings = self.study.train_settings(variant, params, seed=seed)
        if self.device:
            settings["device"] = self.device
        started = utc_now()
        base = self._base_row(variant=variant, phase=phase, key=key, trial_no=trial_no, seed=seed,
                              settings=settings, eval_split=eval_split, started=started)
        if self.verbose and self.lines:
            on_epoch = self._epoch_lines(key, on_epoch)
        failure = None
        try:
            row = self.train_run(TrainConfig.from_dict(settings), data_root=self._data_root, out_dir=self.run_dir.root,
                                 run_id=key, eval_split=eval_split, on_epoch=on_epoch, progress=self.progress,
                                 study=self.study.name, variant=variant, phase=phase, trial=trial_no,
                                 save_checkpoint=self._keeps_checkpoint(phase))
        except AblateError:
            raise
        except Exception as exc:  # recorded as a failed run (below); the study goes on
            row, failure = self._failed_row(exc, started)
        return self._record(row, base, failure)

    def _keeps_checkpoint(self, phase: str) -> bool:
        return self.keep_checkpoints == "all" or (self.keep_checkpoints == "seeds" and phase == "seed")

    def _failed_row(self, exc: Exception, started: str) -> tuple[dict, str]:
        from ablate.engine.environment import utc_now

        if is_disk_full(exc):
            raise self._disk_full(exc) from None
        row = {"status": "failed", "error": _one_line(exc), "miou": float("nan"), "started_at": started,
               "finished_at": utc_now()}
        return row, _one_line(exc) + (f"\n{traceback.format_exc(limit=-3)}" if self.verbose else "")

    def _record(self, row: dict, base: dict, failure: str | None) -> dict:
        """Save one run's row and epochs (results.csv / epochs.csv), the same for single and packed runs."""
        from ablate.engine.environment import utc_now

        study, variant, phase, key, trial_no, seed = (base[k] for k in ("study", "variant", "phase", "run_id",
                                                                        "trial", "seed"))
        started = base["started_at"]
        history = row.pop("epochs_history", None) or row.pop("history", None) or []
        row.pop("history", None)
        base = {k: v for k, v in base.items() if k != "started_at"}
        row = {**base, **{k: v for k, v in row.items() if v is not None or k not in base}}
        row.update(study=study, variant=variant, phase=phase, run_id=key, trial=trial_no)
        row.setdefault("started_at", started)
        row.setdefault("finished_at", utc_now())
        epochs = [{"study": study, "variant": variant, "phase": phase, "run_id": key, "trial": trial_no,
                   "seed": seed, **h} for h in history]
        try:
            self.run_dir.save_run(key, row, epochs)
        except OSError as exc:
            if is_disk_full(exc):
                raise self._disk_full(exc) from None
            raise
        if failure and not self.lines:  # said only now that it is recorded (off a terminal: the run's line says it)
            _say(f"run {key} failed (recorded; the study goes on; -v shows where): {failure}")
        return row

    def _base_row(self, *, variant, phase, key, trial_no, seed, settings, eval_split, started) -> dict:
        return {"study": self.study.name, "variant": variant, "decoder": settings["decoder"], "phase": phase,
                "run_id": key, "trial": trial_no, "seed": seed, "split": eval_split,
                "config": json.dumps(settings, sort_keys=True, default=str), "started_at": started}

    def _line(self, message: str) -> None:
        """One progress line off a terminal (on a terminal the bar says it)."""
        if self.lines:
            worker = os.environ.get("ABLATE_WORKER")
            _say(f"[{worker}] {message}" if worker else message)

    def _epoch_lines(self, key: str, on_epoch):
        def logged(epoch, metrics):
            loss, miou = metrics.get("train_loss", float("nan")), metrics.get("miou", float("nan"))
            self._line(f"{key} epoch {epoch}: train loss {loss:.4f}, val mIoU {miou:.4f}")
            if on_epoch is not None:
                on_epoch(epoch, metrics)

        return logged

    # --- data and settings -------------------------------------------------------------------
    def data_root(self) -> Path:
        if self._data_root is None:
            from ablate.data.registry import dataset_root

            self._data_root = dataset_root(self.study.data, data=self.data_arg, workdir=self.run_dir.root)
        return self._data_root

    def eval_split(self) -> str:
        from ablate.data import find_splits

        wanted = self.study.eval_split
        return wanted if wanted in find_splits(self.data_root()) else "val"

    def best_configs(self) -> dict[str, dict]:
        """Per variant: the TrainConfig fields its seed runs use (tuned best, or fixed settings)."""
        out = {}
        for v in self.study.variants:
            best = T.best_trial(self.trials(v, "tune")) if self.study.tunes(v) else None
            out[v] = self.study.train_settings(v, best.params if best else {}, seed=0)
        return out


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


class _Heartbeat:
    """Beats for trials run outside ``study.optimize`` (a packed group), as Optuna's own thread does for one."""

    def __init__(self, storage, trial_ids: list[int]):
        import threading

        self.storage, self.trial_ids = storage, list(trial_ids)
        self.interval = getattr(storage, "heartbeat_interval", None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            for trial_id in self.trial_ids:
                self.storage.record_heartbeat(trial_id)
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        if self.interval:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


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


def prepare_run_dir(study: Study, out: str) -> RunDir:
    """The run directory; refuses one that holds a different study (mixing would corrupt pairing)
    and an --out that cannot be written (before any work)."""
    run_dir = RunDir(ensure_writable_dir(Path(out) / run_dir_name(study)))
    resolved = resolved_study(study)
    if run_dir.study_json.exists():
        old = json.loads(run_dir.study_json.read_text())
        if old.get("fingerprint") != resolved["fingerprint"]:
            raise StudyError(
                f"{run_dir.root} holds a different study (preset {old.get('preset')!r} or settings differ); "
                f"use another --out or remove that directory")
    else:
        run_dir.write_study(resolved)
    return run_dir
