"""Run one of Optuna's own matplotlib plots inside our style, into a given Axes if asked."""

from __future__ import annotations

import contextlib
import warnings
from unittest import mock

import matplotlib.pyplot as plt


@contextlib.contextmanager
def optuna_axes(ax):
    """Optuna's plots make their own figure and call ``plt.style.use``: keep both local.

    rc_context restores the style afterwards; with ``ax`` given, ``plt.subplots`` hands Optuna
    that Axes (and its figure), so the caller decides the layout as with every other plot.
    """
    import optuna

    with plt.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        if ax is None:
            yield
            return
        plt.sca(ax)
        with mock.patch.object(plt, "subplots", lambda *a, **k: (ax.figure, ax)):
            yield
