"""Benchmark: the native TokenLoader vs the Python reference loader vs HF's DataCollatorForLanguageModeling.

(The issue names it benchmarks/bench_loader.py; benchmarks/ mirrors the package, so it lives in benchmarks/data/.)

Run: ``python benchmarks/data/bench_loader.py [--data DIR] [--quick]`` (``pip install -e '.[bench]'`` for the HF
collator; without transformers that column is skipped). Writes ``benchmarks/results/loader_throughput.{csv,md}``.

Corpus: the embedded samples (English Python docs + People's Daily) prepared by ``bmf prepare`` (vocab 8000), or
``--data`` pointing at any prepared directory. Everything is measured in one process on one core:

* tokens/s = rows x seq_len per second of batch construction (the MLM baseline pads to the longest row, which for
  these pairs is seq_len, so the counts match);
* native ``sync``: ``TokenLoader.batch(i)`` on the calling thread (one core, no prefetching), including the
  zero-copy hand-off to torch; native ``threaded``: iteration with ``num_threads`` workers (wall-clock
  throughput of the consumer, i.e. what the trainer sees);
* Python reference: ``CausalLoader`` / ``MLMLoader``.batch(i) (bit-identical output);
* HF: ``DataCollatorForLanguageModeling`` (torch, ``torch.set_num_threads(1)``) on the *same token ids* the
  native loader produced (unmasked ``[CLS] A [SEP] B [SEP]`` pairs for MLM, windows for causal, as lists of ids
  the way a datasets pipeline hands them over). The collator only pads and masks, so it does less work than the
  loaders, which also read shards, sample, build pairs and pack.

Trainer: ``--trainer`` also runs short GPT and BERT pretraining runs with each loader and reports the
``data_wait_fraction`` the trainer logs (time in ``next(loader)`` over step time).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bigmodel_fast.data.data_dir import PreparedData
from bigmodel_fast.data.loader import CausalLoader, MLMLoader, SpecialIds, TokenLoader
from bigmodel_fast.data.tokenizer import Tokenizer

RESULTS = Path(__file__).resolve().parents[1] / "results"
IGNORE = -100


def prepare_samples(out: Path, vocab_size: int = 8000) -> Path:
    from bigmodel_fast.data import sample_files as samples
    from bigmodel_fast.data.prepare import PrepareConfig, prepare

    if not (out / "tokenizer.model").is_file():
        prepare(PrepareConfig(inputs=[str(p) for p in samples.corpus_paths()], out=str(out), vocab_size=vocab_size,
                              valid_fraction=0.02, progress=False))
    return out


def rate(fn, n_batches: int, tokens_per_batch: int, min_seconds: float = 1.0) -> float:
    """Best tokens/s over repeats of ``fn(i)`` for i in range(n_batches) (at least ``min_seconds`` in total)."""
    best, spent, start_index = 0.0, 0.0, 0
    while spent < min_seconds or best == 0.0:
        t = time.perf_counter()
        for i in range(start_index, start_index + n_batches):
            fn(i)
        dt = time.perf_counter() - t
        spent += dt
        start_index += n_batches
        best = max(best, n_batches * tokens_per_batch / dt)
    return best


def threaded_rate(make, n_batches: int, tokens_per_batch: int) -> float:
    ld = make()
    it = iter(ld)
    for _ in range(8):  # start the workers
        next(it)
    t = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    dt = time.perf_counter() - t
    ld.close()
    return n_batches * tokens_per_batch / dt


def hf_tokenizer(tok: Tokenizer):
    """A PreTrainedTokenizerFast with our vocabulary and special ids (for the HF collator's special-token mask)."""
    from tokenizers import Tokenizer as HFTok
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {tok.id_to_piece(i): i for i in range(tok.vocab_size)}
    hf = PreTrainedTokenizerFast(tokenizer_object=HFTok(WordLevel(vocab, unk_token="[UNK]")), pad_token="[PAD]",
                                 unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                 bos_token="<s>", eos_token="</s>")
    assert hf.pad_token_id == 0 and hf.mask_token_id == 4 and sorted(hf.all_special_ids) == list(range(7))
    return hf


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a `bmf prepare` directory (default: prepare the embedded samples)")
    ap.add_argument("--quick", action="store_true", help="fewer batches (smoke run)")
    ap.add_argument("--trainer", action="store_true", help="also measure the trainer's data-wait fraction")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = Path(args.data) if args.data else prepare_samples(Path(tempfile.gettempdir()) / "bmf_bench_loader_data")
    prepared = PreparedData(data)
    tok = Tokenizer(prepared.tokenizer_file)
    shards = prepared.train_shards()
    ids = SpecialIds.from_tokenizer(tok)
    n = 20 if args.quick else 200
    rows = []

    def add(mode, impl, B, S, tps, note=""):
        rows.append({"mode": mode, "impl": impl, "batch_size": B, "seq_len": S, "tokens_per_s": round(tps),
                     "note": note})
        print(f"{mode:6s} {impl:34s} B={B:<4d} S={S:<5d} {tps / 1e6:9.2f} M tokens/s  {note}", flush=True)

    try:
        from transformers import DataCollatorForLanguageModeling

        hf = hf_tokenizer(tok)
    except ImportError:
        DataCollatorForLanguageModeling, hf = None, None
        print("transformers not installed: skipping the HF collator (pip install -e '.[bench]')")

    # ---------------------------------------------------------------- causal
    for B, S in [(32, 1024), (8, 4096)]:
        kw = dict(seq_len=S, batch_size=B, seed=0, pack=True)
        nat = TokenLoader(shards, mode="causal", **kw)
        add("causal", "native sync (1 core)", B, S, rate(nat.batch, n, B * S), "pack=True")
        add("causal", "native sync (1 core)", B, S,
            rate(TokenLoader(shards, mode="causal", **{**kw, "pack": False}).batch, n, B * S), "pack=False")
        for threads in (1, 2):
            add("causal", f"native threaded ({threads} worker)", B, S,
                threaded_rate(lambda: TokenLoader(shards, mode="causal", num_threads=threads, **kw), n, B * S),
                "consumer wall clock")
        ref = CausalLoader(shards, pad_id=tok.pad_id, **kw)
        add("causal", "python reference", B, S, rate(ref.batch, max(2, n // 20), B * S), "pack=True")
        if hf is not None:
            coll = DataCollatorForLanguageModeling(hf, mlm=False, return_tensors="pt")
            examples = [[{"input_ids": r} for r in nat.batch(i)["input_ids"].tolist()] for i in range(8)]
            add("causal", "HF collator (mlm=False)", B, S,
                rate(lambda i: coll(examples[i % 8]), max(2, n // 10), B * S), "pads + labels only")

    # ---------------------------------------------------------------- mlm
    for B, S in [(64, 128), (32, 512)]:
        kw = dict(seq_len=S, batch_size=B, seed=0, nsp=True, pack=False)
        nat = TokenLoader(shards, mode="mlm", tokenizer=tok, **kw)
        add("mlm", "native sync (1 core)", B, S, rate(nat.batch, n, B * S), "NSP, 80/10/10")
        wwm = TokenLoader(shards, mode="mlm", tokenizer=tok, whole_word_mask=True, **kw)
        add("mlm", "native sync (1 core)", B, S, rate(wwm.batch, n, B * S), "NSP, whole-word")
        for threads in (1, 2):
            add("mlm", f"native threaded ({threads} worker)", B, S,
                threaded_rate(lambda: TokenLoader(shards, mode="mlm", tokenizer=tok, num_threads=threads, **kw),
                              n, B * S), "consumer wall clock")
        ref = MLMLoader(shards, ids, **kw)
        add("mlm", "python reference", B, S, rate(ref.batch, max(2, n // 20), B * S), "NSP, 80/10/10")
        if hf is not None:
            coll = DataCollatorForLanguageModeling(hf, mlm=True, mlm_probability=0.15, return_tensors="pt", seed=0)
            examples = []
            for i in range(8):
                b = nat.batch(i)
                orig = torch.where(b["mlm_labels"] != IGNORE, b["mlm_labels"], b["input_ids"])
                examples.append([{"input_ids": r[m].tolist()} for r, m in zip(orig, b["attention_mask"])])
            add("mlm", "HF collator (mlm=True)", B, S, rate(lambda i: coll(examples[i % 8]), max(2, n // 10), B * S),
                "same pairs, mask+pad only")

    add_ratios(rows)
    trainer = []
    if args.trainer:
        trainer = trainer_wait(data, quick=args.quick)
    write_results(Path(args.out), rows, trainer)
    return {"rows": rows, "trainer": trainer}


def add_ratios(rows: list[dict]) -> None:
    """Speed-up of every native row over the Python reference and the HF collator of its (mode, B, S) group."""
    for r in rows:
        group = [g for g in rows
                 if (g["mode"], g["batch_size"], g["seq_len"]) == (r["mode"], r["batch_size"], r["seq_len"])]
        for key, impl in (("x_python", "python reference"), ("x_hf", "HF collator")):
            base = [g["tokens_per_s"] for g in group if g["impl"].startswith(impl)]
            r[key] = round(r["tokens_per_s"] / base[0], 1) if base and r["impl"].startswith("native") else ""


def trainer_wait(data: Path, quick: bool) -> list[dict]:
    from bigmodel_fast.train.metrics_log import read_metrics
    from bigmodel_fast.train.optim import OptimConfig
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    out = []
    steps = 20 if quick else 60
    for arch in ("gpt", "bert"):
        for loader in ("native", "python"):
            run = Path(tempfile.mkdtemp(prefix=f"bench_{arch}_{loader}_"))
            pretrain(PretrainConfig(
                data=str(data), out=str(run), arch=arch, preset="tiny",
                model_overrides={"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128},
                seq_len=128, batch_size=16, max_steps=steps, eval_every=10**6, save_every=10**6, log_every=10,
                device="auto", optim=OptimConfig(lr=1e-3, warmup_steps=5), progress=False, loader=loader))
            recs = [r for r in read_metrics(run / "metrics.jsonl") if "data_wait_fraction" in r][1:]  # skip warm-up
            frac = float(np.mean([r["data_wait_fraction"] for r in recs]))
            tps = float(np.mean([r["window_tokens_per_s"] for r in recs]))
            out.append({"arch": arch, "loader": loader, "data_wait_fraction": round(frac, 5),
                        "tokens_per_s": round(tps), "device": "cuda" if torch.cuda.is_available() else "cpu"})
            print(f"trainer {arch} {loader}: data wait {frac:.3%} of step time, {tps:,.0f} tokens/s", flush=True)
    return out


def write_results(out: Path, rows: list[dict], trainer: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "loader_throughput.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Loader throughput (benchmarks/data/bench_loader.py)",
        "",
        f"Machine: {os.cpu_count()} logical CPUs ({cpu}), torch {torch.__version__}, python {sys.version.split()[0]}; "
        "one core unless noted. Corpus: the embedded samples prepared with vocab 8000.",
        "",
        "| mode | implementation | B | S | M tokens/s | x Python ref | x HF collator | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        xp = f"{r['x_python']:,}" if r["x_python"] != "" else ""
        xh = f"{r['x_hf']:,}" if r["x_hf"] != "" else ""
        lines.append(f"| {r['mode']} | {r['impl']} | {r['batch_size']} | {r['seq_len']} | "
                     f"{r['tokens_per_s'] / 1e6:,.2f} | {xp} | {xh} | {r['note']} |")
    if trainer:
        lines += ["", "## Trainer data wait (`data_wait_fraction` in metrics.jsonl)", "",
                  "| arch | loader | device | data wait | tokens/s |", "|---|---|---|---:|---:|"]
        lines += [f"| {t['arch']} | {t['loader']} | {t['device']} | {t['data_wait_fraction']:.3%} | "
                  f"{t['tokens_per_s']:,} |" for t in trainer]
    (out / "loader_throughput.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'loader_throughput.csv'} and {out / 'loader_throughput.md'}")


def test_bench_loader_quick(tmp_path):
    """pytest entry (``python -m pytest benchmarks/data/bench_loader.py -s``): a quick run into tmp_path."""
    result = main(["--quick", "--out", str(tmp_path)])
    assert result["rows"]


if __name__ == "__main__":
    main()
