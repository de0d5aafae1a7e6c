"""Backend resolution of the ops with more than one implementation (attention, LSTM): the one place that reads
``BMF_ATTENTION`` / ``BMF_LSTM``.

Both ops take the same ``backend=`` argument and resolve it here, at the start of each call, by the same rules.
Precedence (the first level that names a backend wins):

1. the explicit ``backend=`` argument of the call (:func:`bigmodel_fast.ops.attention.attention`,
   :func:`bigmodel_fast.ops.lstm.lstm_recurrence`, ...);
2. the innermost :func:`use_backends` block of the current thread, e.g. the export
   path's ``use_backends(attention="reference", lstm="reference")``;
3. the environment variable of the op (``BMF_ATTENTION``, ``BMF_LSTM``);
4. the device default (``auto``): off CUDA, or on CUDA without Triton, ``sdpa`` (attention) / ``reference``
   (LSTM). On CUDA with Triton the LSTM runs ``triton``; attention decides per call
   (:func:`bigmodel_fast.ops.attention.attention_choice`): dense calls run the backend measured faster for the
   call on that GPU (:mod:`bigmodel_fast.ops.attention_dispatch`, SDPA unless a committed measurement says ours
   wins), packed calls the Triton varlen kernel. The ops get that ``"auto"`` through ``keep_auto=True``; a caller
   that needs one concrete name before seeing a call (``resolve_backend("attention", cuda)``) gets ``"triton"``,
   the kernels ``auto`` may run there.

Names are case- and whitespace-insensitive. ``auto`` (or an empty string) at any level means the device default;
``None`` (an unset variable) means "not given here", so the next level decides. Every op accepts ``auto``,
``reference`` and ``triton``; attention also ``sdpa``. An explicit ``triton`` (at any level) forces the Triton
kernels for every call they support, as before.

Errors, raised at resolution (so before any work, and at the same point for both ops), all :class:`BackendError`
(a ``ValueError``):

* an unknown name: :class:`AttentionBackendError` / :class:`LSTMBackendError`, naming where the name came from
  and the valid ones (``use_backends`` checks its names when it is entered);
* ``triton`` chosen where the kernels cannot run (Triton not installed, or a non-CUDA device without
  ``TRITON_INTERPRET=1``): :class:`TritonUnavailableError` (also a ``RuntimeError``), as the op's own subclass.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

import torch

from bigmodel_fast.ops.triton_env import HAS_TRITON, interpreting

__all__ = [
    "OPS",
    "AttentionBackendError",
    "AttentionTritonUnavailableError",
    "BackendError",
    "LSTMBackendError",
    "LSTMTritonUnavailableError",
    "OpBackends",
    "TritonUnavailableError",
    "require_triton",
    "requested_backend",
    "resolve_backend",
    "triton_unavailable_reason",
    "use_backends",
]


class BackendError(ValueError):
    """An op backend is unknown, or cannot run where it was asked to."""


class AttentionBackendError(BackendError):
    """``BMF_ATTENTION``, ``use_backends(attention=...)`` or an explicit ``backend=`` names an unknown backend."""


class LSTMBackendError(BackendError):
    """``BMF_LSTM``, ``use_backends(lstm=...)`` or an explicit ``backend=`` names an unknown backend, or ``triton``
    cannot run on the given device."""


class TritonUnavailableError(BackendError, RuntimeError):
    """The ``triton`` backend is forced where it cannot run (no Triton, or a non-CUDA device without the
    interpreter)."""


class AttentionTritonUnavailableError(AttentionBackendError, TritonUnavailableError):
    """:class:`TritonUnavailableError` of the attention op."""


class LSTMTritonUnavailableError(LSTMBackendError, TritonUnavailableError):
    """:class:`TritonUnavailableError` of the LSTM op."""


@dataclass(frozen=True)
class OpBackends:
    """What one op accepts: its environment variable, backend names, default off CUDA and error classes."""

    op: str  # "attention" | "lstm"
    env_var: str
    names: Tuple[str, ...]  # valid names, "auto" first
    cpu_default: str  # the device default off CUDA (and on CUDA without Triton)
    error: type  # raised for an unknown name
    unavailable_error: type  # raised when "triton" cannot run


OPS: Dict[str, OpBackends] = {
    "attention": OpBackends("attention", "BMF_ATTENTION", ("auto", "sdpa", "reference", "triton"), "sdpa",
                            AttentionBackendError, AttentionTritonUnavailableError),
    "lstm": OpBackends("lstm", "BMF_LSTM", ("auto", "reference", "triton"), "reference",
                       LSTMBackendError, LSTMTritonUnavailableError),
}

# .overrides: op -> validated name, of the innermost use_backends block of this thread (a fresh dict per block,
# never mutated). A thread-local rather than a ContextVar: torch.compile traces (and guards on) thread-local
# attributes, not ContextVar.get, and must not import torch._dynamo (it imports Triton) to be told otherwise.
_LOCAL = threading.local()


def _overrides() -> Dict[str, str]:
    """op -> name set by the innermost :func:`use_backends` block of this thread (empty outside any block)."""
    return getattr(_LOCAL, "overrides", {})


def _spec(op: str) -> OpBackends:
    spec = OPS.get(op)
    if spec is None:
        raise ValueError(f"op={op!r} has no backends; expected one of {', '.join(OPS)}")
    return spec


def _checked(spec: OpBackends, raw: str, source: str) -> str:
    """``raw`` normalised (stripped, lower case, ``""`` -> ``"auto"``), or ``spec.error`` naming ``source``."""
    name = raw.strip().lower() or "auto"
    if name not in spec.names:
        raise spec.error(
            f"{source}={raw!r} is not a valid {spec.op} backend; expected one of {', '.join(spec.names)} "
            f"(auto or unset: the device default, {spec.cpu_default} off CUDA)"
        )
    return name


def triton_unavailable_reason(device: torch.device) -> Optional[str]:
    """Why the Triton kernels cannot run on ``device`` (a sentence), or None when they can."""
    if not HAS_TRITON:
        return "needs the `triton` package, which is not installed"
    if device.type == "cuda" or (device.type == "cpu" and interpreting()):
        return None
    return (f"got tensors on {device.type}: the kernels run on CUDA, or on CPU through the Triton interpreter when "
            "TRITON_INTERPRET=1 is set before triton is first imported")


def require_triton(op: str, device: torch.device) -> None:
    """Raise the op's :class:`TritonUnavailableError` unless the Triton kernels can run on ``device``."""
    why = triton_unavailable_reason(device)
    if why is not None:
        spec = _spec(op)
        alt = "sdpa or reference" if "sdpa" in spec.names else "reference"
        raise spec.unavailable_error(f"{op} backend 'triton' {why}. Use {spec.env_var}={alt} on this device.")


def requested_backend(op: str, backend: Optional[str] = None) -> Tuple[str, str]:
    """(name, where it came from) before the device decides: the name may be ``"auto"``; the source is
    ``"argument backend"``, ``"use_backends(<op>)"``, ``"environment variable <VAR>"`` or ``"default"`` (nothing
    set). Precedence as in :func:`resolve_backend`, which is what to call for the backend that runs.

    Raises:
        BackendError: the op's unknown-name error.
    """
    spec = _spec(op)
    if backend is not None:
        return _checked(spec, backend, "argument backend"), "argument backend"
    name = _overrides().get(op)  # checked when its block was entered
    if name is not None:
        return name, f"use_backends({op})"
    raw = os.environ.get(spec.env_var)
    if raw is None:
        return "auto", "default"
    source = "environment variable " + spec.env_var
    return _checked(spec, raw, source), source


def resolve_backend(op: str, device: Optional[torch.device] = None, backend: Optional[str] = None,
                    keep_auto: bool = False) -> str:
    """The backend that runs ``op`` (``"attention"`` or ``"lstm"``) on tensors of ``device`` (None: CPU).

    Precedence and names as in the module docstring: ``backend`` > :func:`use_backends` > environment variable >
    device default. Returns a concrete name, except that with ``keep_auto=True`` an ``auto`` on a CUDA device with
    Triton installed comes back as ``"auto"`` for the op to decide per call (attention's measured dispatch);
    without it that case is ``"triton"``.

    Raises:
        BackendError: the op's unknown-name error, or its :class:`TritonUnavailableError` (``triton`` chosen
            where it cannot run).
    """
    name = requested_backend(op, backend)[0]
    dev = torch.device("cpu") if device is None else device
    if name == "auto":
        if dev.type == "cuda" and HAS_TRITON:
            return "auto" if keep_auto else "triton"
        return _spec(op).cpu_default
    if name == "triton":
        require_triton(op, dev)
    return name


@contextmanager
def use_backends(attention: Optional[str] = None, lstm: Optional[str] = None) -> Iterator[None]:
    """Inside the block, ops without an explicit ``backend=`` run the given backends, whatever the environment says.

    ``None`` leaves that op to the enclosing block / environment. The override is local to the current thread,
    nests, and is undone on exit, exceptions included. Names are checked on entry.

    Example: ``with use_backends(attention="reference", lstm="reference"): torch.export.export(...)``.

    Raises:
        BackendError: an unknown name (the op's unknown-name error).
    """
    outer = _overrides()
    overrides = dict(outer)
    for op, raw in (("attention", attention), ("lstm", lstm)):
        if raw is not None:
            overrides[op] = _checked(_spec(op), raw, f"use_backends({op})")
    _LOCAL.overrides = overrides
    try:
        yield
    finally:
        _LOCAL.overrides = outer
