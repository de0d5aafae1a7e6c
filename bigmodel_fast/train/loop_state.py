"""Where a training run stands, as saved in (and restored from) a checkpoint's trainer state."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopState:
    """Optimizer steps taken and steps skipped for a non-finite loss or gradient norm.

    :meth:`state_dict` gives the flat ``{"step", "skipped_nonfinite"}`` fields of ``trainer_state.json``;
    :meth:`from_state_dict` reads them back (a trainer state written before ``skipped_nonfinite`` existed has 0)."""

    step: int = 0
    skipped_nonfinite: int = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "skipped_nonfinite": self.skipped_nonfinite}

    @classmethod
    def from_state_dict(cls, state: dict) -> LoopState:
        """Raises KeyError without ``step``, TypeError/ValueError for values that are not integers >= 0."""
        loop = cls(step=int(state["step"]), skipped_nonfinite=int(state.get("skipped_nonfinite", 0)))
        if loop.step < 0 or loop.skipped_nonfinite < 0:
            raise ValueError(f"step and skipped_nonfinite must be >= 0, got {loop.step} and {loop.skipped_nonfinite}")
        return loop
