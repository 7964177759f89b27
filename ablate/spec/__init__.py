"""Deprecated name of :mod:`ablate.study` (``spec`` read as "tests" to tools and people).

``from ablate.spec import Claim, Study, Variant`` keeps working for one release, with a
DeprecationWarning; ``ablate.spec.study`` and ``ablate.spec.claims`` are the new
``ablate.study.definition`` and ``ablate.study.claim``.
"""

import sys
import warnings

from ablate import study as _study
from ablate.study import *  # noqa: F403
from ablate.study import __all__  # noqa: F401
from ablate.study import claim as _claim
from ablate.study import definition as _definition

warnings.warn("ablate.spec is now ablate.study; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__ + ".study"] = _definition
sys.modules[__name__ + ".claims"] = _claim
del _study
