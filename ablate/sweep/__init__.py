"""Running a study: Optuna storage, trial bookkeeping, the scheduler loop and its status table.

``storage`` (URL, driver, names) <- ``trials`` (what the storage says) <- ``scheduler``
(``Sweep``: tune, seeds, latency; with ``objectives``, ``packing``, ``gate``, ``recording``, ``optimize``)
and ``status`` (``ablate run --list``). No click here.
"""

from ablate.sweep.scheduler import Sweep, prepare_run_dir
from ablate.sweep.status import state_table, status_table
from ablate.sweep.storage import make_storage, optuna_name, with_db_driver

__all__ = ["Sweep", "make_storage", "optuna_name", "prepare_run_dir", "state_table", "status_table",
           "with_db_driver"]
