"""Benchmark: the C++ runner (TorchScript and AOTInductor bundles) vs Python eager and Python + TorchScript, on CPU.

Run:
``python benchmarks/export/bench_deploy.py [--preset tiny] [--threads 0] [--texts 1736] [--out benchmarks/results]``

What is timed, per batch of consecutive texts (batch 1 and batch 32), identically on every side: tokenize
(``[CLS] ids[:max_len-2] [SEP]``), pad, forward, softmax (the runner also formats its JSON line). The C++ side
reports its own per-batch times (``bmf_runner --timing``), so process start and model load are not in the
latency numbers; they are reported separately as ``startup_s`` (bundle load + first forward, from ``--check``).
The first 3 batches of every contender are warm-up and not counted. Throughput = counted texts / summed batch time.

The model is a randomly initialised classifier of the chosen preset (weights do not change the speed) with a
SentencePiece vocabulary of 8000 trained on the shipped sentiment training split; the texts are the shipped
sentiment test split (Chinese reviews, median ~30 tokens), ``max_len`` 128. Results go to
``OUT/deploy_cpu_t{threads}.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.data import sample_files as samples
from bigmodel_fast.data.classification import encode_for_classifier, pad_batch
from bigmodel_fast.data.tokenizer import Tokenizer
from bigmodel_fast.export.bundle import export_bundle
from bigmodel_fast.export.runner import build_runner
from bigmodel_fast.models import ModelConfig, build_classifier
from bigmodel_fast.models.presets import load_preset

WARMUP = 3
MAX_LEN = 128


def read_texts(split: str) -> list[str]:
    with gzip.open(samples.sentiment_paths()[split], "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"].replace("\n", " ").replace("\r", " ") for line in f]


def make_checkpoint(root: Path, preset: str) -> Path:
    tok = Tokenizer.train(read_texts("train"), root / "tok", vocab_size=8000)
    cfg = ModelConfig(**{**load_preset(preset), "vocab_size": tok.vocab_size, "num_labels": 2,
                         "label_names": ["neg", "pos"]})
    torch.manual_seed(0)
    model = build_classifier(cfg)
    return ckpt.save_checkpoint(root / "ckpt", model, cfg.to_dict(), tok.model_file,
                                {"kind": "classifier", "max_len": MAX_LEN})


def python_times(model, tok: Tokenizer, texts: list[str], batch: int) -> list[float]:
    """Per-batch seconds of tokenize + pad + forward + softmax."""
    times = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            t0 = time.perf_counter()
            seqs = encode_for_classifier(tok, texts[start : start + batch], MAX_LEN)
            ids, mask = pad_batch(seqs, tok.pad_id)
            model(ids, mask).float().softmax(-1)
            times.append(time.perf_counter() - t0)
    return times


def runner_times(binary: Path, bundle: Path, texts: list[str], batch: int, threads: int, tmp: Path) -> list[float]:
    inp, timing = tmp / "texts.txt", tmp / f"timing-{batch}.jsonl"
    inp.write_text("\n".join(texts) + "\n", encoding="utf-8")
    args = [str(binary), str(bundle), "--input", str(inp), "--batch-size", str(batch), "--timing", str(timing)]
    if threads:
        args += ["--threads", str(threads)]
    r = subprocess.run(args, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode(errors="replace"))
    assert len(r.stdout.splitlines()) == len(texts)
    return [json.loads(line)["total_ms"] / 1000 for line in timing.read_text().splitlines()]


def startup(binary: Path, bundle: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(binary), str(bundle), "--check"], check=True, capture_output=True)
    return time.perf_counter() - t0


def summarize(name: str, batch: int, times: list[float], n_texts: int, start_s: float | None) -> dict:
    counted = times[WARMUP:]
    texts = n_texts - min(n_texts, WARMUP * batch)
    ms = np.array(counted) * 1000
    return {"contender": name, "batch": batch, "batches": len(counted),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "texts_per_s": round(texts / float(np.sum(counted)), 1),
            "startup_s": None if start_s is None else round(start_s, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads on every side (0: all cores)")
    ap.add_argument("--texts", type=int, default=0, help="number of test texts (0: all 1736)")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--no-aoti", action="store_true")
    ap.add_argument("--runner-dir", default="build/bmf_runner")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    args = ap.parse_args()
    threads = args.threads or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    texts = read_texts("test")
    if args.texts:
        texts = texts[: args.texts]
    binary = build_runner(args.runner_dir)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        checkpoint = make_checkpoint(tmp, args.preset)
        tok = Tokenizer(checkpoint / "tokenizer.model")
        lens = [len(s) for s in encode_for_classifier(tok, texts, MAX_LEN)]
        print(f"{len(texts)} texts, tokens per text: median {int(np.median(lens))}, max {max(lens)}; threads {threads}")
        bundles = {"torchscript": export_bundle(checkpoint, tmp / "ts")}
        t0 = time.perf_counter()
        if not args.no_aoti:
            bundles["aoti"] = export_bundle(checkpoint, tmp / "aoti", format="aoti")
            print(f"AOTInductor export + compile: {time.perf_counter() - t0:.1f}s")
        eager, _, _ = ckpt.load_model(checkpoint, "classifier")
        eager.eval()
        with torch.inference_mode():
            scripted = torch.jit.load(str(bundles["torchscript"] / "model.pt")).eval()
        py = {"python eager": eager, "python torchscript": scripted}
        if "aoti" in bundles:
            from bigmodel_fast.export.aoti import load_aoti

            py["python aoti"] = load_aoti(bundles["aoti"] / "model.pt2")
        for batch in (int(b) for b in args.batches.split(",")):
            for name, model in py.items():
                rows.append(summarize(name, batch, python_times(model, tok, texts, batch), len(texts), None))
                print(rows[-1])
            for fmt, bundle in bundles.items():
                times = runner_times(binary, bundle, texts, batch, threads, tmp)
                rows.append(summarize(f"C++ runner {fmt}", batch, times, len(texts), startup(binary, bundle)))
                print(rows[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"deploy_cpu_t{threads}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cpu = platform.processor() or platform.machine()
    load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    head = (f"CPU: {os.cpu_count()} cores ({cpu}), {threads} threads, torch {torch.__version__}, preset "
            f"`{args.preset}`, max_len {MAX_LEN}, {len(texts)} sentiment test texts (median {int(np.median(lens))} "
            f"tokens). Per-batch latency = tokenize + pad + forward + softmax; first {WARMUP} batches are warm-up; "
            f"startup = `bmf_runner --check` wall time (process start, bundle load, first forward). 1-minute load "
            f"average before / after: {load} (other processes on the host make p99 noisy).\n\n")
    table = ["| contender | batch | p50 ms | p99 ms | texts/s | startup s |", "|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['contender']} | {r['batch']} | {r['p50_ms']} | {r['p99_ms']} | {r['texts_per_s']} | "
                     f"{'' if r['startup_s'] is None else r['startup_s']} |")
    (out / f"deploy_cpu_t{threads}.md").write_text(head + "\n".join(table) + "\n", encoding="utf-8")
    print(head + "\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
