"""The Optuna objectives of a sweep (tune, seed, latency) and how a finished run is settled and
shared through the storage, so a worker on any machine can rebuild complete tables."""

from __future__ import annotations

import json
import os
import socket

from ablate.errors import AblateError
from ablate.rundir import is_disk_full
from ablate.sweep import trials as T
from ablate.sweep.optimize import RunFailed, _one_line, suggest


class ObjectivesMixin:
    """``Sweep``'s objectives, one per phase, and the settling/sharing of their runs."""

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
            seed = T.suggest_seed(trial, me, self.trials(variant, "seed"))
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
            rows = self.measure_latency(self.study, configs=self.best_configs(), device=self.device or "auto",
                                        num_classes=self.layout().num_classes)
        except AblateError:  # the user's to fix (e.g. a launch cannot import the study file): one line, exit 2
            raise
        except Exception as exc:  # recorded on the trial (--list) and in the run directory (analyze names it)
            if is_disk_full(exc):
                raise self._disk_full(exc) from None
            trial.set_user_attr("error", _one_line(exc))
            self.run_dir.save_phase_failure("latency", _one_line(exc))
            self._line(f"latency failed: {_one_line(exc)}")
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
        if not (self.run_dir.read_record("latency") or {}).get("latency"):
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
