"""Benchmark: MinHash near-duplicate detection (``bigmodel_fast.data.dedup``) against datasketch.

Run by hand (not collected by pytest):

    pip install -e '.[bench]'        # datasketch
    python benchmarks/data/bench_dedup.py --pydoc-dir /tmp/data/pydoc

Data: the paragraphs of the Python 3.11 documentation sources (``fetch_pydoc.py``: Debian python3.11-doc),
plus planted near-duplicates: copies of random paragraphs with word-level edits (substitute / delete /
insert a word, each position with probability ``rate``) at known rates, shuffled in.

Both sides use the same parameters: word 5-gram shingles, 112 permutations, 14 bands x 8 rows, threshold
0.8, and the same greedy rule (in document order, a document joins the lowest cluster among its LSH
candidates whose estimated Jaccard >= 0.8; clusters are never merged). datasketch gets
``MinHash.update_batch`` (its fastest CPU path) over shingles made by a Python regex tokenizer
(lowercase ``[^\\W_]+`` words) and ``MinHashLSH(params=(14, 8))``; its timing includes that shingling,
as ours includes our (native) normalisation.

Measured:
* throughput (best of ``--repeats`` wall times; the machine may be shared): ours at 1 and 2 threads on
  the full corpus and on the evaluation sample, datasketch on the sample (it is ~100x slower);
* quality on the sample against brute-force exact Jaccard of the regex-tokenizer shingle sets:
  document level (a document is a true duplicate when an earlier one has Jaccard >= 0.8; predicted:
  not kept) and pair level (recall: true pairs that end in one cluster; precision: same-cluster pairs
  whose Jaccard is >= 0.8; transitive clusters lower it).

Writes ``benchmarks/results/dedup_pydoc.csv`` and ``dedup_pydoc.md`` (with machine info).
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import itertools
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from fetch_pydoc import DEFAULT_CACHE, load_paragraphs  # noqa: E402

THRESHOLD, NGRAM, NUM_PERM, BANDS = 0.8, 5, 112, 14
EDIT_RATES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
_TOKEN = re.compile(r"[^\W_]+")


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
def edit(text: str, rate: float, rng: np.random.Generator, vocab: list[str]) -> str:
    """Word-level edits: each word is, with probability ``rate``, substituted, deleted or followed by an
    inserted word (one of the three, equally likely)."""
    out = []
    for w in text.split(" "):
        if rng.random() >= rate:
            out.append(w)
            continue
        op = int(rng.integers(0, 3))
        if op == 0:
            out.append(vocab[int(rng.integers(0, len(vocab)))])
        elif op == 2:
            out.extend((w, vocab[int(rng.integers(0, len(vocab)))]))
    return " ".join(out)


def plant(paragraphs: list[str], fraction: float, seed: int) -> tuple[list[str], list[float]]:
    """paragraphs + near-duplicates of ``fraction`` of them (edit rates cycling through EDIT_RATES), shuffled.
    Returns (texts, rate) with rate[i] = edit rate of a planted copy, NaN for an original paragraph."""
    rng = np.random.default_rng(seed)
    vocab = sorted({w for p in paragraphs[:5000] for w in p.split(" ")})
    sources = rng.choice(len(paragraphs), size=int(len(paragraphs) * fraction), replace=False)
    texts, rates = list(paragraphs), [float("nan")] * len(paragraphs)
    for k, src in enumerate(sources.tolist()):
        rate = EDIT_RATES[k % len(EDIT_RATES)]
        texts.append(edit(paragraphs[src], rate, rng, vocab))
        rates.append(rate)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], [rates[i] for i in order]


def py_words(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def py_shingles(text: str, n: int = NGRAM) -> list[str]:
    w = py_words(text)
    if len(w) < n:
        return [" ".join(w)] if w else []
    return [" ".join(w[i : i + n]) for i in range(len(w) - n + 1)]


# ------------------------------------------------------------------------------------------------
# Runners
# ------------------------------------------------------------------------------------------------
def run_ours(texts: list[str], threads: int) -> np.ndarray:
    from bigmodel_fast.data.dedup import dedup

    # greedy, like the datasketch side; dedup()'s default union-find costs ~6% more here (same precision/recall)
    return dedup(texts, threshold=THRESHOLD, ngram=NGRAM, num_perm=NUM_PERM, bands=BANDS, num_threads=threads,
                 clustering="greedy").cluster


def run_datasketch(texts: list[str]) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=(BANDS, NUM_PERM // BANDS))
    sigs: list = []
    cluster = np.arange(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        sh = [s.encode("utf-8") for s in py_shingles(t)]
        m = MinHash(num_perm=NUM_PERM, seed=1)
        sigs.append(m)
        if not sh:  # empty document: its own cluster, never indexed (as ours)
            continue
        m.update_batch(sh)
        best = i
        for c in lsh.query(m):
            if cluster[c] < best and m.jaccard(sigs[c]) >= THRESHOLD:
                best = cluster[c]
        cluster[i] = best
        lsh.insert(i, m)
    return cluster


def best_time(fn, repeats: int) -> tuple[float, float, object]:
    """(best wall seconds, best process CPU seconds, last result) over ``repeats`` calls."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


# ------------------------------------------------------------------------------------------------
# Quality against brute force
# ------------------------------------------------------------------------------------------------
def true_pairs(texts: list[str]) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every pair sharing a shingle (all others are 0), via an inverted index."""
    sets = [set(py_shingles(t)) for t in texts]
    post: dict[str, list[int]] = {}
    for i, s in enumerate(sets):
        for x in s:
            post.setdefault(x, []).append(i)
    inter: dict[tuple[int, int], int] = {}
    for ids in post.values():
        for p in itertools.combinations(ids, 2):
            inter[p] = inter.get(p, 0) + 1
    return {(i, j): c / (len(sets[i]) + len(sets[j]) - c) for (i, j), c in inter.items()}


def quality(cluster: np.ndarray, jac: dict[tuple[int, int], float]) -> dict[str, float]:
    n = len(cluster)
    best_earlier = np.zeros(n)
    for (i, j), v in jac.items():
        if v > best_earlier[j]:
            best_earlier[j] = v
    truth_dup = best_earlier >= THRESHOLD
    pred_dup = cluster != np.arange(n)
    tp = int(np.sum(truth_dup & pred_dup))
    truth = {p for p, v in jac.items() if v >= THRESHOLD}
    members: dict[int, list[int]] = {}
    for i, c in enumerate(cluster.tolist()):
        members.setdefault(c, []).append(i)
    found = {p for m in members.values() if len(m) > 1 for p in itertools.combinations(m, 2)}
    both = len(truth & found)
    return {
        "doc_precision": round(tp / max(1, int(pred_dup.sum())), 4),
        "doc_recall": round(tp / max(1, int(truth_dup.sum())), 4),
        "pair_precision": round(both / max(1, len(found)), 4),
        "pair_recall": round(both / max(1, len(truth)), 4),
        "true_dup_docs": int(truth_dup.sum()),
        "true_pairs": len(truth),
    }


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from bigmodel_fast import _C

    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "simd": _C.minhash_isa(),
    }
    try:
        import datasketch

        info["datasketch"] = datasketch.__version__
    except ImportError:
        info["datasketch"] = "not installed"
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        if dirty:
            info["commit"] += " + uncommitted changes"
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = "unknown"
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pydoc-dir", default=str(DEFAULT_CACHE), help="fetch_pydoc cache dir (reused if extracted)")
    ap.add_argument("--plant-fraction", type=float, default=0.1, help="share of paragraphs given a near-duplicate")
    ap.add_argument("--sample", type=int, default=4000, help="paragraphs in the evaluation sample (before planting)")
    ap.add_argument("--repeats", type=int, default=5, help="timings per configuration (best is kept)")
    ap.add_argument("--ds-repeats", type=int, default=3, help="timings of datasketch on the sample")
    ap.add_argument("--ds-corpus-repeats", type=int, default=1, help="timings of datasketch on the corpus")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="directory for the CSV / markdown")
    ap.add_argument("--no-datasketch", action="store_true")
    args = ap.parse_args(argv)

    paragraphs = load_paragraphs(args.pydoc_dir)
    corpus, _ = plant(paragraphs, args.plant_fraction, seed=0)
    rng = np.random.default_rng(1)
    sample_src = [paragraphs[i] for i in sorted(rng.choice(len(paragraphs), size=args.sample, replace=False))]
    sample, _ = plant(sample_src, 1 / 3, seed=2)
    sizes = {name: (len(t), sum(len(x.encode("utf-8")) for x in t) / 1e6) for name, t in
             (("corpus", corpus), ("sample", sample))}
    print(f"corpus: {sizes['corpus'][0]} docs, {sizes['corpus'][1]:.1f} MB; sample: {sizes['sample'][0]} docs, "
          f"{sizes['sample'][1]:.2f} MB", flush=True)

    rows = []

    def add_row(method, data, threads, seconds, cpu_seconds, cluster, qual=None):
        n, mb = sizes[data]
        rows.append({"method": method, "data": data, "threads": threads, "docs": n, "MB": round(mb, 3),
                     "seconds": round(seconds, 4), "cpu_seconds": round(cpu_seconds, 4),
                     "docs_per_s": round(n / seconds), "MB_per_s": round(mb / seconds, 2),
                     "docs_per_cpu_s": round(n / cpu_seconds),
                     "kept": int(np.sum(cluster == np.arange(len(cluster)))), **(qual or {})})
        print({k: v for k, v in rows[-1].items()}, flush=True)

    jac = true_pairs(sample)
    from bigmodel_fast import _C

    agree = np.mean([_C.minhash_words(t) == py_words(t) for t in sample])
    for data, texts, repeats in (("corpus", corpus, args.repeats), ("sample", sample, args.repeats * 2)):
        # 1 and 2 threads alternate, so that load from other processes hits both alike.
        best = {1: [float("inf"), float("inf"), None], 2: [float("inf"), float("inf"), None]}
        for _ in range(repeats):
            for threads in (1, 2):
                sec, cpu, cl = best_time(lambda: run_ours(texts, threads), 1)
                b = best[threads]
                b[0], b[1], b[2] = min(b[0], sec), min(b[1], cpu), cl
        np.testing.assert_array_equal(best[1][2], best[2][2])  # same result whatever the thread count
        for threads in (1, 2):
            sec, cpu, cl = best[threads]
            add_row("bigmodel_fast", data, threads, sec, cpu, cl, quality(cl, jac) if data == "sample" else None)
    if not args.no_datasketch:
        sec, cpu, cl = best_time(lambda: run_datasketch(corpus), args.ds_corpus_repeats)
        add_row("datasketch", "corpus", 1, sec, cpu, cl)
        sec, cpu, cl = best_time(lambda: run_datasketch(sample), args.ds_repeats)
        add_row("datasketch", "sample", 1, sec, cpu, cl, quality(cl, jac))
        for data in ("corpus", "sample"):
            ds = next(r for r in rows if r["method"] == "datasketch" and r["data"] == data)
            for r in rows:
                if r["data"] == data:
                    r["speedup_vs_datasketch"] = round(ds["seconds"] / r["seconds"], 1)
                    if r["threads"] == 1:  # CPU time: robust to other processes sharing the machine
                        r["cpu_speedup_vs_datasketch"] = round(ds["cpu_seconds"] / r["cpu_seconds"], 1)
    rows.sort(key=lambda r: (r["data"] != "corpus", r["method"] != "bigmodel_fast", r["threads"]))
    for r in rows:
        one = next(x for x in rows if x["method"] == r["method"] and x["data"] == r["data"] and x["threads"] == 1)
        r["scaling_vs_1_thread"] = round(one["seconds"] / r["seconds"], 2)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fields = ["method", "data", "threads", "docs", "MB", "seconds", "cpu_seconds", "docs_per_s", "MB_per_s",
              "docs_per_cpu_s", "kept", "speedup_vs_datasketch", "cpu_speedup_vs_datasketch", "scaling_vs_1_thread",
              "doc_precision", "doc_recall", "pair_precision",
              "pair_recall", "true_dup_docs", "true_pairs"]
    with open(out / "dedup_pydoc.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})

    info = machine_info()
    info["load average (1/5/15 min) at the end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())

    def fmt(col: str, v) -> str:
        if v == "":
            return ""
        if col.endswith(("precision", "recall")):
            return f"{v:.3f}"
        if col in ("speedup_vs_datasketch", "cpu_speedup_vs_datasketch", "scaling_vs_1_thread"):
            return f"{v:.2f}x" if v < 10 else f"{v:.0f}x"
        return f"{v:,}" if isinstance(v, int) else str(v)

    cols = ["method", "data", "threads", "docs_per_s", "MB_per_s", "speedup_vs_datasketch",
            "cpu_speedup_vs_datasketch", "scaling_vs_1_thread",
            "doc_precision", "doc_recall", "pair_precision", "pair_recall"]
    lines = [
        "# Near-duplicate detection: bigmodel_fast MinHash-LSH vs datasketch",
        "",
        f"Generated by `benchmarks/data/bench_dedup.py` on {info['date']}.",
        "",
        "| machine | |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        f"Parameters (both): word {NGRAM}-gram shingles, {NUM_PERM} permutations, {BANDS} bands x "
        f"{NUM_PERM // BANDS} rows, threshold {THRESHOLD}. Best of {args.repeats} (ours; {args.repeats * 2} on the "
        f"sample) / {args.ds_repeats} (datasketch, sample; {args.ds_corpus_repeats} on the corpus) wall times. "
        "Ours is faster per document on the small sample because its bucket table fits in cache there. "
        "`cpu_speedup` compares best process CPU times of the 1-thread runs (robust when other processes "
        "share the machine; wall-time numbers and thread scaling are not).",
        "",
        f"Data: Python 3.11 docs paragraphs (Debian python3.11-doc). `corpus` = all {len(paragraphs)} paragraphs "
        f"+ {args.plant_fraction:.0%} planted near-duplicates = {sizes['corpus'][0]} docs, "
        f"{sizes['corpus'][1]:.1f} MB; `sample` = {args.sample} random paragraphs + 1/3 planted = "
        f"{sizes['sample'][0]} docs, {sizes['sample'][1]:.2f} MB. Edit rates (word substitute/delete/insert "
        f"per word): {', '.join(str(r) for r in EDIT_RATES)}.",
        "",
        f"Quality vs brute-force exact Jaccard on the sample ({rows[-1].get('true_dup_docs', '?')} true duplicate "
        f"documents, {rows[-1].get('true_pairs', '?')} pairs with Jaccard >= {THRESHOLD}; doc = duplicate "
        "decisions, pair = true pairs in one cluster (recall) / same-cluster pairs that are true (precision); "
        "the regex tokenizer "
        f"used for the truth agrees with ours on {agree:.1%} of the documents).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *["| " + " | ".join(fmt(c, r.get(c, "")) for c in cols) + " |" for r in rows],
        "",
    ]
    (out / "dedup_pydoc.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
