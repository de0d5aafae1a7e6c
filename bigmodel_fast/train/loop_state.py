"""Where a training run stands, as saved in (and restored from) a checkpoint's trainer state."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopState:
    """Optimizer steps taken, steps skipped for a non-finite loss or gradient norm, and steps the fp16 GradScaler
    skipped after an overflow.

    :meth:`state_dict` gives the flat ``{"step", "skipped_nonfinite", "grad_scaler_skipped"}`` fields of
    ``trainer_state.json``; :meth:`from_state_dict` reads them back (a trainer state written before a field existed
    has 0)."""

    step: int = 0
    skipped_nonfinite: int = 0
    grad_scaler_skipped: int = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "skipped_nonfinite": self.skipped_nonfinite,
                "grad_scaler_skipped": self.grad_scaler_skipped}

    @classmethod
    def from_state_dict(cls, state: dict) -> LoopState:
        """Raises KeyError without ``step``, TypeError/ValueError for values that are not integers >= 0."""
        loop = cls(step=int(state["step"]), skipped_nonfinite=int(state.get("skipped_nonfinite", 0)),
                   grad_scaler_skipped=int(state.get("grad_scaler_skipped", 0)))
        if min(loop.step, loop.skipped_nonfinite, loop.grad_scaler_skipped) < 0:
            raise ValueError(f"step, skipped_nonfinite and grad_scaler_skipped must be >= 0, got {loop.step}, "
                             f"{loop.skipped_nonfinite} and {loop.grad_scaler_skipped}")
        return loop
