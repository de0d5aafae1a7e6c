"""``bmf plot``: training curves of one or more run directories (their ``metrics.jsonl``) in one PNG.

Panels, each drawn when some run logged it (several runs overlaid, the directory name as the legend):

- training loss: ``loss`` of the log records (``bmf pretrain``: the mean over each log window; ``bmf finetune``:
  the step's loss). Records of a skipped non-finite step (they carry ``skipped_nonfinite``) are left out;
- held-out loss: ``eval_loss`` (``bmf pretrain`` with a validation split);
- validation metrics: every numeric ``valid_*`` key (``bmf finetune``: ``valid_macro_f1``, ``valid_accuracy``, ...;
  regression ``valid_mse``, ...);
- learning rate: ``lr``;
- tokens/s: ``window_tokens_per_s`` (``bmf pretrain``'s log windows);
- MFU: ``mfu`` (``bmf pretrain`` on a device with a known peak; null elsewhere).

Null values are gaps. A step logged twice (a run resumed from an earlier checkpoint logs the steps after it
again) keeps its last value; series are sorted by step. A line that is not a JSON object (a run killed while
writing) is skipped with a warning naming ``file:line``.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..config_cli import setting
from ..optional import require

__all__ = ["PANELS", "PlotConfig", "default_out", "plot_runs", "read_series"]

# (panel title, y label, the keys it draws: exact names, or a prefix ending in "*")
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("training loss", "loss", ("loss",)),
    ("held-out loss", "loss", ("eval_loss",)),
    ("validation metrics", "value", ("valid_*",)),
    ("learning rate", "lr", ("lr",)),
    ("throughput", "tokens/s", ("window_tokens_per_s",)),
    ("MFU", "model FLOPs utilisation", ("mfu",)),
)
FLAG = "bmf plot"


@dataclass
class PlotConfig:
    """``bmf plot``'s settings (each field is also its flag)."""

    runs: list[str] = setting(positional=True, metavar="RUN_DIR",
                              help="run directories of bmf pretrain / finetune (each holding metrics.jsonl)")
    out: str | None = setting(None, metavar="PNG", help="the figure (default: RUN_DIR/curves.png with one run "
                              "directory; required with several)")

    def __post_init__(self):
        require("matplotlib", "plots", FLAG)
        default_out(self.runs, self.out)  # several runs without --out: the error now, before reading anything


def default_out(run_dirs: Sequence[str | Path], out_png: str | Path | None) -> Path:
    """``out_png``, or ``RUN_DIR/curves.png`` for one run directory; ValueError for several without one."""
    if out_png is not None:
        return Path(out_png)
    if len(run_dirs) != 1:
        raise ValueError(f"--out PNG is required with {len(run_dirs)} run directories")
    run = Path(run_dirs[0])
    return (run.parent if run.is_file() else run) / "curves.png"


def _metrics_file(run: Path) -> Path:
    path = run if run.is_file() else run / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: no such file (is {run} a run directory of bmf pretrain or bmf finetune?)")
    return path


def _matches(key: str, keys: Sequence[str]) -> bool:
    return any(key.startswith(k[:-1]) if k.endswith("*") else key == k for k in keys)


def _wanted(key: str) -> bool:
    return any(_matches(key, keys) for _, _, keys in PANELS)


def read_series(run: str | Path) -> dict[str, dict[str, list]]:
    """``{key: {"steps": [...], "values": [...]}}`` of the plotted keys (module docstring) in ``run``'s
    metrics.jsonl (``run`` may also be the file itself), sorted by step, None for a null value. ValueError naming
    the file when it is missing; a line that is not a JSON object: a warning naming ``file:line``, skipped."""
    path = _metrics_file(Path(run))
    series: dict[str, dict[int, float | None]] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                warnings.warn(f"{path}:{lineno}: not JSON ({e.msg}); line skipped", stacklevel=2)
                continue
            if not isinstance(rec, dict):
                warnings.warn(f"{path}:{lineno}: not a JSON object; line skipped", stacklevel=2)
                continue
            step = rec.get("step")
            if not isinstance(step, int) or isinstance(step, bool) or "skipped_nonfinite" in rec:
                continue
            for key, value in rec.items():
                if not _wanted(key):
                    continue
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    continue
                series.setdefault(key, {})[step] = None if value is None else float(value)
    return {key: {"steps": sorted(points), "values": [points[s] for s in sorted(points)]}
            for key, points in series.items()}


def _labels(runs: Sequence[Path]) -> list[str]:
    """Each run's legend label: its directory name, or the path as given when two names clash."""
    names = [(r.parent if r.is_file() else r).name or str(r) for r in runs]
    return names if len(set(names)) == len(names) else [str(r) for r in runs]


def _has_values(series: dict) -> bool:
    return any(v is not None and math.isfinite(v) for v in series["values"])


def plot_runs(run_dirs: Sequence[str | Path], out_png: str | Path | None = None) -> dict:
    """Draw the panels of the module docstring for ``run_dirs`` into ``out_png`` (default: :func:`default_out`).

    Returns ``{"path", "image_size", "panels": [titles drawn], "runs": {label: {key: {"steps", "values"}}}}``, the
    series as drawn (:func:`read_series`). ValueError when a metrics.jsonl is missing or nothing is plottable."""
    if not run_dirs:
        raise ValueError("no run directories given")
    out = default_out(run_dirs, out_png)
    require("matplotlib", "plots", FLAG)
    runs = [Path(r) for r in run_dirs]
    data = {label: read_series(r) for label, r in zip(_labels(runs), runs)}
    panels = []
    for title, ylabel, keys in PANELS:
        lines = [(label, key, s) for label, series in data.items() for key, s in series.items()
                 if _matches(key, keys) and _has_values(s)]
        if lines:
            panels.append((title, ylabel, lines))
    if not panels:
        raise ValueError(f"nothing to plot: no loss, eval, lr or throughput values in "
                         f"{', '.join(str(_metrics_file(r)) for r in runs)}")

    from matplotlib.figure import Figure

    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(6.5 * ncols, 4.0 * nrows), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    for ax, (title, ylabel, lines) in zip(axes, panels):
        for label, key, s in lines:
            values = [math.nan if v is None else v for v in s["values"]]
            shown = label if not _several_keys(lines) else f"{label}: {key}" if len(data) > 1 else key
            ax.plot(s["steps"], values, marker="." if len(values) < 30 else None, label=shown)
        if title.endswith("loss") and _spans_decades(lines):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(lines) > 1 or len(data) > 1:
            ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    w, h = fig.get_size_inches()
    return {"path": str(out), "image_size": [int(round(w * 100)), int(round(h * 100))],
            "panels": [title for title, _, _ in panels], "runs": data}


def _several_keys(lines) -> bool:
    return len({key for _, key, _ in lines}) > 1


def _spans_decades(lines) -> bool:
    """True when the panel's positive values span more than two decades (a log axis reads better)."""
    vals = [v for _, _, s in lines for v in s["values"] if v is not None and math.isfinite(v) and v > 0]
    return bool(vals) and max(vals) / min(vals) > 100 and all(
        v is None or not math.isfinite(v) or v > 0 for _, _, s in lines for v in s["values"])
