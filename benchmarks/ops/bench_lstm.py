"""Benchmark: fused Triton LSTM (``bigmodel_fast.nn.lstm.LSTM``, BMF_LSTM=triton) vs cuDNN ``torch.nn.LSTM`` vs
an eager ``torch.nn.LSTMCell`` loop, one layer, forward and forward+backward.

Sizes: the PyTorch fastrnns default (seq 100, batch 64, input = hidden = 512) and around it batch 1/8/256 and
hidden 256/1024 (input = hidden). Times are medians of ``triton.testing.do_bench`` (CUDA events); forward runs
with autograd recording (a training forward), forward+backward adds ``out.backward`` with a fixed random gradient
and also computes the gradients of the input, h0/c0 and all weights. fp32 follows PyTorch's default
``torch.backends.cudnn.allow_tf32 = True`` for both cuDNN and ours (the Triton kernels use tf32 ``tl.dot`` exactly
when cuDNN may).

    python benchmarks/ops/bench_lstm.py                       # on a GPU: CSV + PNG under benchmarks/results/
    python benchmarks/ops/bench_lstm.py --dry-run --out /tmp  # tiny sizes on CPU through the Triton interpreter

Writes ``lstm_<gpu>.csv`` (one row per size x dtype x implementation, with GPU name, torch/triton versions and
date), ``lstm_<gpu>.png`` (forward+backward time per sequence), and prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU (Triton interpreter); checks the script")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="directory for the CSV and PNG")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32, fp16, bf16")
    p.add_argument("--quick", action="store_true", help="GPU: only the fastrnns default size")
    p.add_argument("--no-eager", action="store_true", help="skip the (slow) LSTMCell loop")
    p.add_argument("--tune-out", default="", help="--tune: write the best blocks per size here (JSON)")
    p.add_argument("--tune", action="store_true",
                   help="GPU: time the forward and backward kernels over block sizes / warps (prints, no CSV)")
    return p.parse_args(argv)


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def sizes(args):
    """(seq, batch, input, hidden) configurations; the first is the fastrnns default."""
    if args.dry_run:
        return [(3, 2, 16, 16), (2, 3, 8, 33)]
    default = (100, 64, 512, 512)
    if args.quick:
        return [default]
    return [default, (100, 1, 512, 512), (100, 8, 512, 512), (100, 256, 512, 512), (100, 64, 256, 256),
            (100, 64, 1024, 1024)]


class CellLoop(torch.nn.Module):
    """The eager baseline: ``nn.LSTMCell`` called once per time step (several kernels per step)."""

    def __init__(self, cell: torch.nn.LSTMCell):
        super().__init__()
        self.cell = cell

    def forward(self, x, hx):
        h, c = hx[0][0], hx[1][0]
        outs = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
            outs.append(h)
        return torch.stack(outs), (h[None], c[None])


def make_models(i, h, dtype, device):
    from bigmodel_fast.nn.lstm import LSTM

    torch.manual_seed(0)
    ref = torch.nn.LSTM(i, h).to(device=device, dtype=dtype)
    ours = LSTM(i, h).to(device=device, dtype=dtype)
    ours.load_state_dict(ref.state_dict())
    ref.flatten_parameters()  # cuDNN's fast path: one contiguous weight buffer
    cell = torch.nn.LSTMCell(i, h).to(device=device, dtype=dtype)
    with torch.no_grad():
        cell.weight_ih.copy_(ref.weight_ih_l0)
        cell.weight_hh.copy_(ref.weight_hh_l0)
        cell.bias_ih.copy_(ref.bias_ih_l0)
        cell.bias_hh.copy_(ref.bias_hh_l0)
    return {"ours": ours, "cudnn": ref, "eager_cell": CellLoop(cell)}


def timer(device):
    if device.type == "cuda":
        import triton.testing

        return lambda fn: triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")

    def cpu_time(fn, reps=3):
        fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2] * 1e3

    return cpu_time


def bench_one(name, model, x, hx, grad_out, measure):
    def fwd():
        return model(x, hx)

    def fwd_bwd():
        out, (hn, cn) = model(x, hx)
        torch.autograd.backward([out, hn, cn], [grad_out, torch.zeros_like(hn), torch.zeros_like(cn)])

    os.environ["BMF_LSTM"] = "triton" if name == "ours" else "reference"
    return measure(fwd), measure(fwd_bwd)


def tune(args) -> int:
    """Time ``lstm_fwd`` / ``lstm_bwd`` directly over (BLOCK_B, BLOCK_H, num_warps[, resident]) per size."""
    import itertools

    import triton
    import triton.testing

    from bigmodel_fast.ops import lstm_triton as K

    dev = torch.device("cuda")
    sms = torch.cuda.get_device_properties(dev).multi_processor_count
    table = {}
    for dt_name in [d.strip() for d in args.dtypes.split(",") if d.strip()]:
        dtype = DTYPES[dt_name]
        for seq, batch, _, hid in sizes(args):
            g = torch.Generator(device="cpu").manual_seed(0)
            xg = torch.randn(seq, batch, 4 * hid, generator=g).to(dev, dtype)
            w = (torch.randn(4 * hid, hid, generator=g) / hid ** 0.5).to(dev, dtype)
            h0 = torch.zeros(batch, hid, device=dev, dtype=dtype)
            c0 = torch.zeros(batch, hid, device=dev, dtype=dtype)
            d_out = torch.randn(seq, batch, hid, generator=g).to(dev, dtype)
            res = []
            for bb, bh, warps, stages, resident in itertools.product((16, 32, 64), (16, 32), (4, 8), (1, 3),
                                                                     (False,)):
                if bb > max(16, triton.next_power_of_2(batch)) or bh > max(16, triton.next_power_of_2(hid)):
                    continue
                if resident and 4 * bh * triton.next_power_of_2(hid) * xg.element_size() > 96 * 1024:
                    continue
                if triton.cdiv(hid, bh) * triton.cdiv(batch, bb) > sms:
                    continue
                blocks = (bb, bh, 64, warps, stages)
                try:
                    fwd = K.lstm_fwd(xg, w, h0, c0, None, False, mode="persistent", blocks=blocks, resident=resident)
                    t_f = triton.testing.do_bench(lambda: K.lstm_fwd(xg, w, h0, c0, None, False, "persistent",
                                                                     blocks, resident), warmup=10, rep=60,
                                                  return_mode="median")
                    t_b = float("nan")
                    if not resident:
                        _, _, _, gates, hs, cs = fwd
                        args_b = (d_out, torch.zeros_like(h0), torch.zeros_like(c0), w, None, gates, hs, cs, False)
                        t_b = triton.testing.do_bench(lambda: K.lstm_bwd(*args_b, mode="persistent", blocks=blocks),
                                                      warmup=10, rep=60, return_mode="median")
                except Exception as e:  # a config that does not compile or fit
                    print(f"  {dt_name} B{batch} H{hid} {blocks} resident={resident}: {type(e).__name__}: "
                          f"{str(e)[:120]}")
                    continue
                res.append((t_f, t_b, bb, bh, warps, stages, resident))
            print(f"{dt_name} seq={seq} B={batch} H={hid} (default fwd {K.pick_blocks(batch, hid, dev, 'fwd')}, "
                  f"bwd {K.pick_blocks(batch, hid, dev, 'bwd')}):")
            for t_f, t_b, bb, bh, warps, stages, resident in sorted(res, key=lambda r: r[0]):
                print(f"   fwd {t_f:7.3f} ms  bwd {t_b:7.3f} ms   BB={bb:3d} BH={bh:3d} warps={warps} "
                      f"stages={stages} resident={resident}")
            best_f = min(res, key=lambda r: r[0])
            best_b = min(res, key=lambda r: r[1])
            print("   best fwd:", best_f, " best bwd:", best_b)
            dt_key = str(dtype).replace("torch.", "")
            table[f"fwd,{batch},{hid},{dt_key}"] = [best_f[2], best_f[3], 64, best_f[4], best_f[5]]
            table[f"bwd,{batch},{hid},{dt_key}"] = [best_b[2], best_b[3], 64, best_b[4], best_b[5]]
    if args.tune_out:
        import json

        Path(args.tune_out).write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {args.tune_out} (use it with BMF_LSTM_TUNED={args.tune_out})")
    return 0


def max_err(a, b):
    return (a.float() - b.float()).abs().max().item()


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu-triton-interpreter"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        device = torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            print("bench_lstm: no CUDA device; use --dry-run to exercise the script on CPU", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        if args.tune:
            return tune(args)
    import triton

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if args.dry_run:
        dtypes = [d for d in dtypes if d != "bf16"] or ["fp32"]  # bf16 tl.dot is wrong in the interpreter
    measure = timer(device)
    gpu = device_name(device)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {"gpu": gpu, "torch": torch.__version__, "triton": triton.__version__,
            "cudnn": str(torch.backends.cudnn.version()) if device.type == "cuda" else "",
            "tf32": str(torch.backends.cudnn.allow_tf32), "date": stamp,
            "blocks": "tuned:" + Path(os.environ["BMF_LSTM_TUNED"]).name if os.environ.get("BMF_LSTM_TUNED")
            else "heuristic"}
    rows = []
    for dt_name in dtypes:
        dtype = DTYPES[dt_name]
        for seq, batch, inp, hid in sizes(args):
            models = make_models(inp, hid, dtype, device)
            g = torch.Generator(device="cpu").manual_seed(1)
            x = torch.randn(seq, batch, inp, generator=g).to(device=device, dtype=dtype).requires_grad_()
            hx = tuple(torch.randn(1, batch, hid, generator=g).to(device=device, dtype=dtype).requires_grad_()
                       for _ in range(2))
            grad_out = torch.randn(seq, batch, hid, generator=g).to(device=device, dtype=dtype)
            os.environ["BMF_LSTM"] = "triton"
            err = max_err(models["ours"](x, hx)[0], models["cudnn"](x, hx)[0])
            times = {}
            for name, model in models.items():
                if name == "eager_cell" and args.no_eager:
                    continue
                times[name] = bench_one(name, model, x, hx, grad_out, measure)
            for name, (f_ms, fb_ms) in times.items():
                rows.append({**meta, "dtype": dt_name, "seq": seq, "batch": batch, "input": inp, "hidden": hid,
                             "impl": name, "fwd_ms": round(f_ms, 4), "fwd_bwd_ms": round(fb_ms, 4),
                             "fwd_us_per_step": round(1e3 * f_ms / seq, 2),
                             "fwd_bwd_us_per_step": round(1e3 * fb_ms / seq, 2),
                             "fwd_bwd_speedup_vs_cudnn": round(times["cudnn"][1] / fb_ms, 3),
                             "fwd_speedup_vs_cudnn": round(times["cudnn"][0] / f_ms, 3),
                             "max_abs_err_out_vs_cudnn": f"{err:.2e}"})
            print(f"{dt_name} seq={seq} batch={batch} hidden={hid}: "
                  + ", ".join(f"{k} fwd {v[0]:.3f} ms / fwd+bwd {v[1]:.3f} ms" for k, v in times.items())
                  + f" (max |ours - cudnn| = {err:.1e})", flush=True)
    os.environ.pop("BMF_LSTM", None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")
    csv_path = out / f"lstm_{slug}.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {csv_path}")
    print(markdown_table(rows))
    png = plot(rows, out / f"lstm_{slug}.png")
    if png:
        print(f"wrote {png}")
    return 0


def markdown_table(rows) -> str:
    """One line per (dtype, size): fwd / fwd+bwd ms of each implementation and ours' speed-ups."""
    keyed = {}
    for r in rows:
        keyed.setdefault((r["dtype"], r["seq"], r["batch"], r["hidden"]), {})[r["impl"]] = r
    lines = ["| dtype | seq | batch | hidden | ours fwd / fwd+bwd (ms) | cuDNN (ms) | LSTMCell loop (ms) | "
             "fwd+bwd vs cuDNN | fwd+bwd vs loop | µs/step fwd+bwd (ours) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (dt, seq, batch, hid), impls in keyed.items():
        o, c, e = impls.get("ours"), impls.get("cudnn"), impls.get("eager_cell")
        cell = f"{e['fwd_ms']:.3f} / {e['fwd_bwd_ms']:.3f}" if e else "-"
        vs_loop = f"{e['fwd_bwd_ms'] / o['fwd_bwd_ms']:.2f}×" if e else "-"
        lines.append(f"| {dt} | {seq} | {batch} | {hid} | {o['fwd_ms']:.3f} / {o['fwd_bwd_ms']:.3f} | "
                     f"{c['fwd_ms']:.3f} / {c['fwd_bwd_ms']:.3f} | {cell} | {o['fwd_bwd_speedup_vs_cudnn']:.2f}× | "
                     f"{vs_loop} | {o['fwd_bwd_us_per_step']:.1f} |")
    return "\n".join(lines)


def plot(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return None
    impls = ["ours", "cudnn", "eager_cell"]
    labels, data = [], {k: [] for k in impls}
    keyed = {}
    for r in rows:
        keyed.setdefault((r["dtype"], r["seq"], r["batch"], r["hidden"]), {})[r["impl"]] = r["fwd_bwd_ms"]
    for (dt, seq, batch, hid), v in keyed.items():
        labels.append(f"{dt}\nB{batch} H{hid}")
        for k in impls:
            data[k].append(v.get(k, float("nan")))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(labels)), 4))
    width = 0.27
    for n, k in enumerate(impls):
        ax.bar([i + (n - 1) * width for i in range(len(labels))], data[k], width, label=k)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("forward+backward per sequence (ms, log)")
    ax.set_title(f"LSTM, seq {rows[0]['seq']}, 1 layer, {rows[0]['gpu']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


if __name__ == "__main__":
    sys.exit(main())
