"""What a plot module hands the registry: a ``Figure`` (name, how to draw it, caption, placement) prepared from
``FigureInputs`` (verdicts.json and the run's tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

# beside the answer, in the budgets section, in the many-variant accuracy-cost section, among the figures
PLACEMENTS = ("headline", "budgets", "accuracy_cost", "figures")


@dataclass
class Figure:
    name: str                 # file stem under report/plots/
    draw: Callable            # draw(ax=None) -> the Axes drawn on
    caption: str
    placement: str            # one of PLACEMENTS
    skip: str | None = None   # why the run's data do not support it (then it is not drawn, and the report says so)


@dataclass
class FigureInputs:
    """What every figure is prepared from: verdicts.json and the run's tables."""
    verdicts: dict
    tables: object            # run_reader.RunTables
    seeds: pd.DataFrame       # run_reader.seed_rows of the run
    seed: int = 0             # random state for the figures that need one

    @property
    def baseline(self) -> str | None:
        return self.verdicts.get("baseline")

    @cached_property
    def order(self) -> list[str]:
        """The variants with finished seed runs, in verdicts.json's order."""
        variants = self.verdicts.get("variants") or {}
        return [v for v in variants if variants[v].get("n_seeds", 0) > 0]

    @cached_property
    def colours(self) -> dict:
        from analysis.plots.style import variant_colours

        return variant_colours(self.verdicts.get("variants") or {})  # one colour per variant in every figure

    @cached_property
    def tune_studies(self) -> dict:
        """variant -> its Optuna tune study (empty without a study.db)."""
        if getattr(self.tables, "storage_path", None) is None:
            return {}
        from analysis.run_reader import load_tune_studies

        return load_tune_studies(self.tables.storage_path, self.order)
