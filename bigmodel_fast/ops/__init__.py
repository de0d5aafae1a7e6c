"""Low-level ops. :func:`attention` is the single attention dispatch point (see ``ops/attention.py``).

Re-exports exactly the public names listed in ``bigmodel_fast.ops.attention.__all__``.
"""

from __future__ import annotations

from bigmodel_fast.ops import attention as _attention_module
from bigmodel_fast.ops.attention import *  # noqa: F401,F403  (the function `attention` shadows the submodule)

__all__ = list(_attention_module.__all__)
