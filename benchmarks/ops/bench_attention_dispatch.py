"""Benchmark: host-side cost of one attention call through our dispatch, Triton launches stubbed out.

Short sequences and small models leave the GPU waiting on the host, so the Python between the model and the
kernel launch matters. This times, on the CPU, the eager ``autograd.Function`` path that :func:`attention` takes
against the ``torch.library`` custom op that ``torch.compile`` uses, with the Triton launchers replaced by stubs
that only allocate the outputs: what remains is our dispatch, the custom-op machinery and autograd. The real
launches add the same cost to both paths.

    python benchmarks/ops/bench_attention_dispatch.py            # prints a table, writes the CSV

Writes ``attention_dispatch_<host>.csv`` into ``--out`` (default ``benchmarks/results``) with CPU model, torch
version and date on every row; ratios are against the custom op measured in the same process.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import platform
import sys
import timeit
from pathlib import Path

import torch


class _StubLaunchers:
    """Stands in for ``bigmodel_fast.ops.attention_triton``: allocates the outputs, launches nothing."""

    def __init__(self, layout):
        self.layout = layout

    def flash_attn_forward(self, q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale):
        lse = torch.empty(self.layout.lse_shape(q, cu_seqlens is not None), dtype=torch.float32)
        return self.layout.empty_like_bshd(q), lse

    def flash_attn_backward(self, do, q, k, v, out, lse, kmask, cu_seqlens, max_seqlen, causal, scale):
        return self.layout.grad_like(q), self.layout.grad_like(k), self.layout.grad_like(v)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=3000, help="calls per timing (best of --repeat)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", default=str(Path(__file__).parents[1] / "results"))
    p.add_argument("--tag", default="cpu")
    args = p.parse_args(argv)

    attn = importlib.import_module("bigmodel_fast.ops.attention")
    op = importlib.import_module("bigmodel_fast.ops.attention_op")
    backend = importlib.import_module("bigmodel_fast.ops.backend")
    op._triton_module = lambda: _StubLaunchers(importlib.import_module("bigmodel_fast.ops.attention_layout"))
    torch.set_num_threads(1)
    q, k, v = (torch.randn(2, 4, 16, 32, requires_grad=True) for _ in range(3))
    do = torch.randn(2, 4, 16, 32)
    args8 = (q, k, v, None, None, 0, True, 0.125)
    op_fwd = lambda: op._flash_attn_fwd(*args8)[0]  # noqa: E731
    fn_fwd = lambda: op._FlashAttnFunction.apply(*args8)  # noqa: E731
    public = lambda: attn.attention(q, k, v, None, True, backend="triton")  # noqa: E731 - needs Triton on CPU
    cases = [
        ("fwd", "custom_op", op_fwd),
        ("fwd", "autograd.Function", fn_fwd),
        ("fwd+bwd", "custom_op", lambda: op_fwd().backward(do)),
        ("fwd+bwd", "autograd.Function", lambda: fn_fwd().backward(do)),
    ]
    backend.triton_unavailable_reason = lambda device: None  # let the public entry reach the stubs on CPU
    cases.append(("fwd", "attention() (eager path, checks included)", public))
    cases.append(("fwd+bwd", "attention() (eager path, checks included)", lambda: public().backward(do)))

    meta = dict(cpu=cpu_name(), torch=torch.__version__, threads=1,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    rows, base = [], {}
    for direction, path, fn in cases:
        for _ in range(200):
            fn()
        us = min(timeit.repeat(fn, number=args.calls, repeat=args.repeat)) / args.calls * 1e6
        base.setdefault(direction, us)  # the custom op comes first in each direction
        rows.append(dict(meta, direction=direction, path=path, us_per_call=round(us, 2),
                         ratio_vs_custom_op=round(base[direction] / us, 2)))
        print(f"{direction:8s} {path:42s} {us:8.2f} us/call  {base[direction] / us:5.2f}x vs custom op", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"attention_dispatch_{args.tag}.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print("csv:", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
