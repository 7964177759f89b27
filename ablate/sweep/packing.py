"""Seed packing in a sweep: one worker claims up to K queued seeds of a variant, trains them packed
(ablate.engine.packed) while a heartbeat thread keeps the claimed trials alive, and records and tells
each one as the single-seed path does."""

from __future__ import annotations

import importlib
import json
import os
import socket
import warnings

from ablate.errors import AblateError
from ablate.sweep import trials as T


class PackingMixin:
    """``Sweep``'s seed packing (``--pack-seeds``)."""

    def pack_size(self, variant: str) -> int:
        """How many seeds of ``variant`` one worker trains packed: --pack-seeds K, or (auto) the engine's
        ``suggested_pack_size`` for the variant's seed runs (1 on CPU, 1 where packing does not apply)."""
        if self.pack_seeds != "auto":
            return int(self.pack_seeds)
        if variant not in self._pack_sizes:
            self._pack_sizes[variant] = self._suggested_pack_size(variant)
        return self._pack_sizes[variant]

    def check_packing(self) -> None:
        """ConfigError (one line) for the first variant whose seeds cannot be packed (``check_packable``), e.g. a
        decoder that draws random numbers outside ablate's seeded dropout; for a forced --pack-seeds K."""
        from ablate.engine.config import TrainConfig
        from ablate.engine.packed import check_packable

        for variant in self.study.variants:
            cfgs = [TrainConfig.from_dict(self._seed_settings(variant, {}, seed)) for seed in self.study.seeds[:2]]
            try:
                check_packable(cfgs)
            except AblateError as exc:
                raise type(exc)(f"--pack-seeds {self.pack_seeds}: variant {variant}: {exc}") from None

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
        return suggested_pack_size(cfgs[0], seeds=len(self.study.seeds), num_classes=self.layout().num_classes)

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
                seed = T.suggest_seed(trial, me, self.trials(variant, "seed"))
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
