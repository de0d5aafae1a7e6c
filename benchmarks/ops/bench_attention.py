"""Benchmark: Triton fused attention vs ``scaled_dot_product_attention`` vs eager attention.

Rows: B * S = 16k tokens, H * D = 2048, head dim 64 and 128, seq 512 ... 16k, causal and not, bf16 and fp16;
forward, backward and forward + backward timed with ``triton.testing.do_bench``; TFLOP/s with forward
FLOPs = 4 * B * H * S^2 * D (halved for causal), backward = 2.5 x forward; peak memory of one forward + backward
above the inputs and one live output, measured after an untimed warm-up call (so autotuning is not counted). For
SDPA the backend PyTorch picked is recorded (``torch._fused_sdp_choice``).

    python benchmarks/ops/bench_attention.py                     # full table on a CUDA GPU
    python benchmarks/ops/bench_attention.py --head-dims 128 --seqs 4096
    python benchmarks/ops/bench_attention.py --dry-run           # tiny CPU run through the Triton interpreter
    python benchmarks/ops/bench_attention.py --plot-only CSV     # redraw the plot from a CSV

Writes ``attention_<gpu>.csv`` (GPU name, torch/triton versions and date on every row) and, when matplotlib is
installed, ``attention_<gpu>.png`` into ``--out`` (default ``benchmarks/results``); rows are appended as they are
measured, so an interrupted run keeps what it has.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import os
import re
import sys
import time
from pathlib import Path

FIELDS = ["gpu", "torch", "triton", "date", "impl", "sdpa_backend", "dtype", "causal", "head_dim", "batch", "heads",
          "seq", "direction", "ms", "tflops", "peak_mem_mb", "note"]
DIRECTIONS = ("fwd", "bwd", "fwd+bwd")
FLOP_FACTOR = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU through the Triton interpreter")
    p.add_argument("--head-dims", type=int, nargs="+", default=[64, 128])
    p.add_argument("--seqs", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192, 16384])
    p.add_argument("--dtypes", nargs="+", default=["bf16", "fp16"], choices=["bf16", "fp16", "fp32"])
    p.add_argument("--causal", nargs="+", default=["0", "1"], choices=["0", "1"])
    p.add_argument("--impls", nargs="+", default=["triton", "sdpa", "eager"], choices=["triton", "sdpa", "eager"])
    p.add_argument("--tokens", type=int, default=16384, help="B * S")
    p.add_argument("--width", type=int, default=2048, help="H * D")
    p.add_argument("--eager-max-seq", type=int, default=8192, help="skip eager above this (S^2 scores in memory)")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results, dry run: a temp dir)")
    p.add_argument("--tag", default=None, help="file name tag (default: the GPU name)")
    p.add_argument("--plot-only", default=None, metavar="CSV", help="only draw the plot of an existing CSV")
    return p.parse_args(argv)


def flops(b, h, s, d, causal, direction):
    f = 4.0 * b * h * s * s * d * (0.5 if causal else 1.0)
    return f * FLOP_FACTOR[direction]


def plot(csv_path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return None
    with open(csv_path) as f:
        rows = [r for r in csv.DictReader(f) if r["tflops"]]
    if not rows:
        return None
    panels = sorted({(int(r["head_dim"]), r["causal"]) for r in rows})
    fig, axes = plt.subplots(len(DIRECTIONS), len(panels), figsize=(4.2 * len(panels), 3.2 * len(DIRECTIONS)),
                             squeeze=False, sharex=True)
    styles = {"triton": "-o", "sdpa": "--s", "eager": ":^"}
    for i, direction in enumerate(DIRECTIONS):
        for j, (d, causal) in enumerate(panels):
            ax = axes[i][j]
            for impl in ("triton", "sdpa", "eager"):
                for dtype in sorted({r["dtype"] for r in rows}):
                    pts = sorted((int(r["seq"]), float(r["tflops"])) for r in rows
                                 if r["impl"] == impl and r["dtype"] == dtype and r["direction"] == direction
                                 and int(r["head_dim"]) == d and r["causal"] == causal)
                    if pts:
                        ax.plot(*zip(*pts), styles[impl], label=f"{impl} {dtype}", markersize=3)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{direction}, D={d}, {'causal' if causal == '1' else 'non-causal'}", fontsize=9)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("TFLOP/s")
            if i == len(DIRECTIONS) - 1:
                ax.set_xlabel("sequence length (B*S const)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"attention on {rows[0]['gpu']} (torch {rows[0]['torch']}, triton {rows[0]['triton']})", fontsize=10)
    fig.tight_layout()
    out = csv_path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    print("plot:", out)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.plot_only:
        return 0 if plot(Path(args.plot_only)) else 1
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
        os.environ.setdefault("BMF_TRITON_AUTOTUNE", "0")
    import torch
    import torch.nn.functional as F
    import triton
    from torch.nn.attention import SDPBackend

    from bigmodel_fast.ops.attention import triton_attention

    dev = "cpu" if args.dry_run else "cuda"
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA GPU: run with --dry-run for the CPU interpreter smoke test", file=sys.stderr)
        return 2
    if args.dry_run:
        args.head_dims, args.seqs, args.tokens, args.width = [32], [64, 128], 128, 64
        args.dtypes = [d for d in args.dtypes if d != "bf16"] or ["fp16"]  # interpreter: no bf16 tl.dot
    gpu = "cpu-interpreter" if args.dry_run else torch.cuda.get_device_name()
    tag = args.tag or re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")
    out_dir = Path(args.out or ("/tmp/bmf_bench_dry" if args.dry_run else Path(__file__).parents[1] / "results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"attention_{tag}.csv"
    meta = dict(gpu=gpu, torch=torch.__version__, triton=triton.__version__,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

    def bench(fn, grad_to_none):
        if args.dry_run:
            fn()
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1e3
        return triton.testing.do_bench(fn, warmup=25, rep=100, grad_to_none=grad_to_none)

    def eager(q, k, v, causal):
        s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
        if causal:
            n = q.shape[-2]
            s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
        return torch.matmul(torch.softmax(s, dim=-1), v)

    def tuned_configs():
        """Block sizes the autotuner picked for the last call: BLOCK_MxBLOCK_N/warps/stages per kernel."""
        import importlib

        at = importlib.import_module("bigmodel_fast.ops.attention_triton")
        parts = []
        for name in ("_attn_fwd", "_attn_bwd_dkdv", "_attn_bwd_dq"):
            c = getattr(getattr(at, name), "best_config", None)
            if c is not None:
                parts.append(f"{name[6:] or 'fwd'}:{c.kwargs['BLOCK_M']}x{c.kwargs['BLOCK_N']}"
                             f"/w{c.num_warps}/s{c.num_stages}")
        return " ".join(parts)

    impls = {
        "triton": lambda q, k, v, c: triton_attention(q, k, v, None, c),
        "sdpa": lambda q, k, v, c: F.scaled_dot_product_attention(q, k, v, is_causal=c),
        "eager": eager,
    }
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        for d in args.head_dims:
            h = args.width // d
            for s in args.seqs:
                b = max(1, args.tokens // s)
                for dname in args.dtypes:
                    dt = dtypes[dname]
                    for causal in (c == "1" for c in args.causal):
                        q, k, v, do = (torch.randn(b, h, s, d, device=dev, dtype=dt) for _ in range(4))
                        for t in (q, k, v):
                            t.requires_grad_(True)
                        sdpa_backend = ""
                        if not args.dry_run:
                            choice = torch._fused_sdp_choice(q, k, v, is_causal=causal)
                            sdpa_backend = SDPBackend(choice).name
                        for impl in args.impls:
                            row = dict(meta, impl=impl, sdpa_backend=sdpa_backend if impl == "sdpa" else "",
                                       dtype=dname, causal=int(causal), head_dim=d, batch=b, heads=h, seq=s)
                            fn = impls[impl]
                            if impl == "eager" and s > args.eager_max_seq:
                                w.writerow(dict(row, direction="fwd", note=f"skipped: seq > {args.eager_max_seq}"))
                                continue
                            try:
                                # one untimed forward + backward first: Triton's autotuner benchmarks every config on
                                # the first call of a new key, and its do_bench holds a 256 MiB L2-flush buffer that
                                # must not be counted as the kernel's memory
                                fn(q, k, v, causal).backward(do)
                                q.grad = k.grad = v.grad = None
                                out = fn(q, k, v, causal)
                                peak = ""
                                if not args.dry_run:
                                    torch.cuda.synchronize()
                                    base = torch.cuda.memory_allocated()
                                    torch.cuda.reset_peak_memory_stats()
                                    fn(q, k, v, causal).backward(do)
                                    torch.cuda.synchronize()
                                    peak = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
                                    q.grad = k.grad = v.grad = None
                                times = {
                                    "fwd": bench(lambda: fn(q, k, v, causal), None),
                                    "bwd": bench(lambda out=out: out.backward(do, retain_graph=True), [q, k, v]),
                                    "fwd+bwd": bench(lambda: fn(q, k, v, causal).backward(do), [q, k, v]),
                                }
                                note = tuned_configs() if impl == "triton" else ""
                                for direction, ms in times.items():
                                    tf = flops(b, h, s, d, causal, direction) / (ms * 1e-3) / 1e12
                                    w.writerow(dict(row, direction=direction, ms=round(ms, 4), tflops=round(tf, 2),
                                                    peak_mem_mb=peak, note=note))
                                    print(f"{impl:6s} {sdpa_backend if impl == 'sdpa' else '':20s} {dname} "
                                          f"causal={int(causal)} D={d} B={b} H={h} S={s} {direction:7s} "
                                          f"{ms:9.3f} ms {tf:7.1f} TFLOP/s peak={peak} MiB", flush=True)
                                del out
                            except torch.cuda.OutOfMemoryError as e:  # eager at long sequences
                                w.writerow(dict(row, direction="fwd", note="OOM: " + str(e).split("\n")[0][:80]))
                            except Exception as e:  # noqa: BLE001 - keep the table going, record the failure
                                w.writerow(dict(row, direction="fwd", note=f"error: {type(e).__name__}: {e}"[:200]))
                                print("error", impl, d, s, dname, causal, repr(e)[:300], flush=True)
                            f.flush()
                            q.grad = k.grad = v.grad = None
                            if not args.dry_run:
                                torch.cuda.empty_cache()
    print("csv:", csv_path)
    plot(csv_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
