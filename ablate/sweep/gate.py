"""``--until-settled`` in a sweep: the seed gate opens a prefix of the study's seeds, and is asked again
each time every seed it opened has settled (the CLI builds the gate from analysis; ablate never imports it)."""

from __future__ import annotations

from ablate.sweep import trials as T


class SeedGateMixin:
    """``Sweep``'s seed gate: which seeds to schedule now."""

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
