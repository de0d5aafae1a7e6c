"""Benchmark: throughput of the quality-filter chain (and PII masking) on the embedded sample corpora.

Run as a script for the full report (throughput per corpus, per-family cost, drop rates per reason)::

    python benchmarks/data/bench_quality.py [--rounds 5] [--profile] [--json out.json]

or under pytest-benchmark: ``python -m pytest benchmarks/data/bench_quality.py -s``.

Documents are read and cleaned (``clean_documents``, default config) outside the timed region; timings are the
best of ``--rounds`` single-threaded passes of ``QualityFilter()`` over every document. MB/s counts UTF-8 bytes
of the cleaned input (a CJK character is 3 bytes, so chars/s is also printed). ``peoples_daily_zh`` ships one
paragraph per document (median 75 characters), which is the worst case for per-document overhead; the
``zh x10`` row regroups 10 consecutive paragraphs into one document, closer to article-sized input.

The per-family rows run one family alone on a fresh document view, so each includes the shared work it needs
(line split, tokens, script detection); they do not add up to the chain, where that work is shared and where
documents dropped early never reach the later families.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from collections.abc import Callable

import pytest

from bigmodel_fast.data import sample_files as samples
from bigmodel_fast.data.clean import clean_documents
from bigmodel_fast.data.filters import c4, fineweb, gopher_quality, gopher_repetition
from bigmodel_fast.data.filters._text import TextView
from bigmodel_fast.data.pii import mask_pii
from bigmodel_fast.data.quality import QualityConfig, QualityFilter, QualityStats, filter_documents
from bigmodel_fast.data.sources import Document, iter_documents


def load_corpora() -> dict[str, list[str]]:
    """Cleaned texts of the two sample corpora, plus the Chinese one regrouped 10 paragraphs per document."""
    out = {}
    for path in samples.corpus_paths():
        name = path.name.split(".")[0]
        out[name] = [d.text for d in clean_documents(iter_documents([path]))]
    zh = out["peoples_daily_zh"]
    out["peoples_daily_zh x10"] = ["\n".join(zh[i:i + 10]) for i in range(0, len(zh), 10)]
    return out


def best_time(fn: Callable[[], object], rounds: int) -> float:
    """Best of ``rounds`` CPU times (``time.process_time``: on a shared machine wall time mostly measures the
    neighbours; the chain is single-threaded, so CPU time is its wall time on an idle core)."""
    times = []
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def family_fns(texts: list[str], cfg: QualityConfig) -> dict[str, Callable[[], object]]:
    return {
        "gopher_quality": lambda: [gopher_quality.check(TextView(t), cfg.gopher_quality) for t in texts],
        "gopher_repetition": lambda: [gopher_repetition.check(TextView(t), cfg.gopher_repetition) for t in texts],
        "c4": lambda: [c4.apply(TextView(t), cfg.c4) for t in texts],
        "fineweb": lambda: [fineweb.check(TextView(t), cfg.fineweb) for t in texts],
    }


def report(rounds: int = 5, profile: bool = False) -> dict:
    cfg = QualityConfig()
    qf = QualityFilter(cfg)
    results = {}
    for name, texts in load_corpora().items():
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        nchars = sum(map(len, texts))
        chain = best_time(lambda: [qf(t) for t in texts], rounds)
        pii = best_time(lambda: [mask_pii(t) for t in texts], rounds)
        fams = {k: best_time(fn, rounds) for k, fn in family_fns(texts, cfg).items()}
        stats = QualityStats()
        list(filter_documents((Document(text=t, source=name) for t in texts), cfg, stats))
        results[name] = {
            "docs": len(texts), "bytes": nbytes, "chars": nchars,
            "chain_s": chain, "chain_MB_s": nbytes / chain / 1e6, "chain_Mchars_s": nchars / chain / 1e6,
            "chain_docs_s": len(texts) / chain,
            "pii_MB_s": nbytes / pii / 1e6,
            "family_ms": {k: v * 1e3 for k, v in fams.items()},
            "stats": stats.to_dict(),
        }
        r = results[name]
        print(f"\n== {name}: {len(texts)} docs, {nbytes / 1e6:.2f} MB UTF-8, {nchars / 1e6:.2f} M chars")
        print(f"   chain  {chain * 1e3:7.1f} ms   {r['chain_MB_s']:6.2f} MB/s   {r['chain_Mchars_s']:5.2f} M chars/s   "
              f"{r['chain_docs_s']:8.0f} docs/s   (1 core)")
        print(f"   pii    {pii * 1e3:7.1f} ms   {r['pii_MB_s']:6.2f} MB/s")
        print("   alone: " + ", ".join(f"{k} {v:.0f} ms" for k, v in r["family_ms"].items()))
        s = stats
        print(f"   kept {s.kept}/{s.seen} ({100 * s.kept / max(s.seen, 1):.1f}%), "
              f"characters kept {100 * s.chars_out / max(s.chars_in, 1):.1f}%, modified by C4: {s.modified}")
        for reason, n in s.to_dict()["dropped"].items():
            print(f"     {reason:40s} {n:6d}  {100 * n / s.seen:5.1f}%")
        if s.lines_dropped:
            print("   C4 lines removed: " + ", ".join(f"{k} {v}" for k, v in s.to_dict()["lines_dropped"].items()))
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            for t in texts:
                qf(t)
            prof.disable()
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(12)
    return results


# ------------------------------------------------------------------------------------------- pytest-benchmark

_CORPORA: dict[str, list[str]] = {}


def _corpus(name: str) -> list[str]:
    if not _CORPORA:
        _CORPORA.update(load_corpora())
    return _CORPORA[name]


@pytest.mark.parametrize("name", ["pydoc_en", "peoples_daily_zh", "peoples_daily_zh x10"])
def test_quality_chain(benchmark, name):
    texts = _corpus(name)
    qf = QualityFilter()
    benchmark.group = "quality chain"
    out = benchmark.pedantic(lambda: [qf(t) for t in texts], rounds=5)
    assert len(out) == len(texts)
    secs = benchmark.stats.stats.min
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    benchmark.extra_info["MB_per_s"] = round(nbytes / secs / 1e6, 2)
    benchmark.extra_info["docs_per_s"] = round(len(texts) / secs)
    print(f"\n{name}: {nbytes / secs / 1e6:.2f} MB/s, {len(texts) / secs:.0f} docs/s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print the top functions of one chain pass")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    results = report(args.rounds, args.profile)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
