"""Benchmark: peak memory and time of the LM loss + backward, plain (F.linear + fp32 CE) vs chunked
(``bigmodel_fast.ops.linear_cross_entropy``), GPT-2 sizes: V = 50,257, E = 768, N = B * S tokens.

One call = ``loss(hidden (N, E), weight (V, E), targets (N,))`` then ``loss.backward()`` with both inputs requiring
grad (the weight as the tied embedding would), one target in 1024 ignored (the row ends).

Memory, CPU: every (tokens, variant) runs in a fresh subprocess that builds the inputs, warms both variants up on
tiny inputs (N 1024, V 1000: one-off library initialisation) and runs ONE call; the reported peak is its
``ru_maxrss`` minus that of a baseline subprocess that does the same but runs no call (the in-process delta,
maxrss after the call minus maxrss before it, is recorded too). Both include the
(N, E) and (V, E) fp32 gradients the call leaves behind. Memory, CUDA: ``max_memory_allocated`` minus the
allocated bytes after the inputs, in one process.

Time: the variants interleaved in one process (plain, chunked, plain, ...) after one untimed warm-up each; the
median per call is reported with the 1-minute load average before and after (the machine may be shared).

    python benchmarks/ops/bench_lm_loss.py                          # CPU table (a few minutes on 2 cores)
    python benchmarks/ops/bench_lm_loss.py --mem-tokens 4096 --time-tokens 1024 --reps 3
    python benchmarks/ops/bench_lm_loss.py --device cuda --autocast bf16 --tag h100
    python benchmarks/ops/bench_lm_loss.py --dry-run                # tiny sizes, temp output folder

Writes ``lm_loss_<tag>.csv`` (machine, torch version and date on every row) and ``lm_loss_<tag>.md`` into
``--out`` (default ``benchmarks/results``; tag default ``cpu`` / the GPU name).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = ["machine", "torch", "date", "device", "autocast", "vocab", "hidden", "tokens", "variant", "chunk_size",
          "peak_extra_mb", "in_process_extra_mb", "logits_fp32_mb", "median_ms", "timed_calls", "loss",
          "load_before", "load_after"]
VARIANTS = ("plain", "chunked")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--autocast", default="off", choices=["off", "bf16", "fp16"])
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--mem-tokens", type=int, nargs="*", default=[4096, 8192, 16384])
    p.add_argument("--time-tokens", type=int, nargs="*", default=[1024, 4096])
    p.add_argument("--reps", type=int, default=3, help="timed calls per variant and size")
    p.add_argument("--chunk-size", type=int, default=None, help="chunked variant's tokens per chunk (default: auto)")
    p.add_argument("--mem-fraction", type=float, default=0.6,
                   help="CPU: skip a plain run whose predicted peak exceeds this share of MemAvailable")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes (V 1000, E 64) into a temp folder")
    p.add_argument("--out", default=None)
    p.add_argument("--tag", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one memory measurement
    p.add_argument("--tokens", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_inputs(n, v, e, device):
    """hidden (n, e), weight (v, e) (GPT-2-like scale), targets (n,): seeded, built without large temporaries."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(0)
    hidden = torch.randn(n, e, generator=g).to(device).requires_grad_()
    weight = torch.randn(v, e, generator=g).mul_(0.02).to(device).requires_grad_()
    targets = torch.randint(0, v, (n,), generator=g)
    targets[1023::1024] = -100
    return hidden, weight, targets.to(device)


def run_call(variant, hidden, weight, targets, autocast, chunk_size):
    """One loss + backward; returns the loss as a float (a host sync, after the backward)."""
    import torch

    from bigmodel_fast.ops.linear_cross_entropy import linear_cross_entropy, linear_cross_entropy_reference

    hidden.grad = weight.grad = None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(autocast)
    with torch.autocast(hidden.device.type, dtype=dtype, enabled=dtype is not None):
        if variant == "plain":
            loss = linear_cross_entropy_reference(hidden, weight, targets)
        else:
            loss = linear_cross_entropy(hidden, weight, targets, chunk_size=chunk_size)
    loss.backward()
    return float(loss.detach())


def sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker(args):
    """Subprocess body: build inputs, run one call of ``args.worker`` (or none for "baseline"), print JSON."""
    import torch

    hidden, weight, targets = make_inputs(args.tokens, args.vocab, args.hidden, args.device)
    small = make_inputs(1024, 1000, args.hidden, args.device)  # warm-up: library init is not the loss's memory
    for v in VARIANTS:
        run_call(v, *small, args.autocast, None)
    del small
    res = {"variant": args.worker}
    cuda = args.device.startswith("cuda")
    if cuda:
        sync(args.device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if args.worker != "baseline":
        res["loss"] = run_call(args.worker, hidden, weight, targets, args.autocast, args.chunk_size)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res["maxrss_mb"] = rss_after / 1024
    res["in_process_extra_mb"] = (rss_after - rss_inputs) / 1024
    if cuda:
        res["cuda_extra_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    print(json.dumps(res))


def spawn(args, variant, tokens):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--tokens", str(tokens),
           "--device", args.device, "--autocast", args.autocast, "--vocab", str(args.vocab),
           "--hidden", str(args.hidden)]
    if args.chunk_size:
        cmd += ["--chunk-size", str(args.chunk_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def mem_available_mb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def machine_name(device):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def time_variants(args, tokens):
    """{variant: (median ms, n, loss)} with the variants interleaved in this process; plus the load averages."""
    hidden, weight, targets = make_inputs(tokens, args.vocab, args.hidden, args.device)
    times = {v: [] for v in VARIANTS}
    losses = {}
    load_before = os.getloadavg()[0]
    for v in VARIANTS:  # warm-up
        losses[v] = run_call(v, hidden, weight, targets, args.autocast, args.chunk_size)
    for _ in range(args.reps):
        for v in VARIANTS:
            sync(args.device)
            t0 = time.perf_counter()
            run_call(v, hidden, weight, targets, args.autocast, args.chunk_size)
            sync(args.device)
            times[v].append((time.perf_counter() - t0) * 1e3)
    load_after = os.getloadavg()[0]
    return {v: (statistics.median(times[v]), len(times[v]), losses[v]) for v in VARIANTS}, load_before, load_after


def write_md(path, rows, header):
    lines = [header, "", "| tokens (B x S) | variant | peak extra MB | in-process extra MB | fp32 logits MB "
             "| median ms / call | plain / chunked peak | load before / after |", "|---|---|---|---|---|---|---|---|"]
    by = {(r["tokens"], r["variant"]): r for r in rows}
    for r in rows:
        plain = by.get((r["tokens"], "plain"), {}).get("peak_extra_mb")
        ratio = (f"{float(plain) / float(r['peak_extra_mb']):.1f}x" if r["variant"] == "chunked" and plain
                 and r["peak_extra_mb"] else "")
        lines.append(f"| {r['tokens']:,} ({r['tokens'] // 1024} x 1024) | {r['variant']} | {r['peak_extra_mb']} | "
                     f"{r['in_process_extra_mb']} | {r['logits_fp32_mb']} | {r['median_ms']} | {ratio} | "
                     f"{r['load_before']} / {r['load_after']} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    import torch

    from bigmodel_fast.ops.linear_cross_entropy import default_chunk_size

    if args.dry_run:
        args.vocab, args.hidden, args.mem_tokens, args.time_tokens, args.reps = 1000, 64, [2048], [1024], 2
    out = Path(args.out or (tempfile.mkdtemp() if args.dry_run else "benchmarks/results"))
    out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or ("cpu" if args.device == "cpu" else torch.cuda.get_device_name().lower().replace(" ", "_"))
    machine, date = machine_name(args.device), datetime.date.today().isoformat()
    cuda = args.device.startswith("cuda")
    rows = {}

    def row(tokens, variant):
        key = (tokens, variant)
        if key not in rows:
            chunk = (args.chunk_size or default_chunk_size(tokens, args.vocab)) if variant == "chunked" else ""
            rows[key] = dict(machine=machine, torch=torch.__version__, date=date, device=args.device,
                             autocast=args.autocast, vocab=args.vocab, hidden=args.hidden, tokens=tokens,
                             variant=variant, chunk_size=chunk, peak_extra_mb="", in_process_extra_mb="",
                             logits_fp32_mb=round(tokens * args.vocab * 4 / 2**20), median_ms="", timed_calls="",
                             loss="", load_before="", load_after="")
        return rows[key]

    for tokens in args.mem_tokens:
        base = None if cuda else spawn(args, "baseline", tokens)
        for v in VARIANTS:
            predicted = 4 * tokens * args.vocab * 4 / 2**20  # plain: logits, log-softmax and both grads (fp32)
            if v == "plain" and not cuda and predicted > args.mem_fraction * mem_available_mb():
                print(f"skip plain at {tokens} tokens: predicted {predicted:,.0f} MB > {args.mem_fraction} x "
                      f"available {mem_available_mb():,.0f} MB", file=sys.stderr)
                continue
            load = os.getloadavg()[0]
            res = spawn(args, v, tokens)
            r = row(tokens, v)
            extra = res["cuda_extra_mb"] if cuda else res["maxrss_mb"] - base["maxrss_mb"]
            r.update(peak_extra_mb=round(extra), in_process_extra_mb=round(res["in_process_extra_mb"]),
                     loss=f"{res['loss']:.6f}", load_before=f"{load:.1f}", load_after=f"{os.getloadavg()[0]:.1f}")
            print(json.dumps(r), flush=True)
    for tokens in args.time_tokens:
        res, lb, la = time_variants(args, tokens)
        for v, (ms, n, loss) in res.items():
            r = row(tokens, v)
            r.update(median_ms=f"{ms:.0f}", timed_calls=n, load_before=f"{lb:.1f}", load_after=f"{la:.1f}")
            r["loss"] = r["loss"] or f"{loss:.6f}"
            print(json.dumps(r), flush=True)
    ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[0], VARIANTS.index(k[1])))]
    csv_path, md_path = out / f"lm_loss_{tag}.csv", out / f"lm_loss_{tag}.md"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(ordered)
    how = ("CUDA max_memory_allocated above the inputs" if cuda else "ru_maxrss of a fresh subprocess minus a "
           "baseline subprocess that builds the same inputs and runs the same tiny warm-up, but no call")
    header = (f"{machine}; torch {torch.__version__}, {date}. LM loss + backward, V = {args.vocab:,}, "
              f"E = {args.hidden}, fp32 inputs, autocast {args.autocast}; chunked = "
              f"bigmodel_fast.ops.linear_cross_entropy (chunk size auto unless set: "
              f"{args.chunk_size or 'auto'}). Peak extra memory: {how}; it includes the (N, E) and (V, E) fp32 "
              f"grads left behind ({args.vocab * args.hidden * 4 / 2**20:.0f} MB for the weight). Time: median "
              f"of {args.reps} calls per variant, interleaved in one process; 1-minute load average shown.")
    write_md(md_path, ordered, header)
    print(f"wrote {csv_path} and {md_path}")


if __name__ == "__main__":
    main()
