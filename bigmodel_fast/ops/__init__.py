"""Low-level ops, one submodule per op: :mod:`~bigmodel_fast.ops.attention` (the single attention dispatch point,
:func:`bigmodel_fast.ops.attention.attention`; :func:`~bigmodel_fast.ops.attention.attention_choice` says what a
call runs and why), :mod:`~bigmodel_fast.ops.lstm` (the LSTM recurrence), :mod:`~bigmodel_fast.ops.backend` (how
both pick their backend) and :mod:`~bigmodel_fast.ops.attention_dispatch` (the measured SDPA-or-Triton table that
``auto`` on CUDA reads for dense attention).

``bigmodel_fast.ops.attention`` is the submodule, never the function: import the function with
``from bigmodel_fast.ops.attention import attention``. The other public names of the attention module and the
backend switch (:func:`use_backends`, :func:`resolve_backend`, :class:`BackendError`) are re-exported here.
"""

from __future__ import annotations

from bigmodel_fast.ops import attention as _attention_module
from bigmodel_fast.ops.backend import BackendError, resolve_backend, use_backends

# every public name of the attention module but `attention` itself, which stays the submodule
_ATTENTION_NAMES = [n for n in _attention_module.__all__ if n != "attention"]
globals().update({n: getattr(_attention_module, n) for n in _ATTENTION_NAMES})

__all__ = _ATTENTION_NAMES + ["BackendError", "resolve_backend", "use_backends"]
del _attention_module
