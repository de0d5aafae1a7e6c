"""Benchmark: one token-classification fine-tuning step of bmf's BERT ``TokenClassifier`` vs transformers'
``BertForTokenClassification`` (SDPA), same shape, same batches, one process, CPU.

Run: ``python benchmarks/train/bench_token_step.py [--shapes small,tiny] [--steps 20] [--warmup 3]
[--out benchmarks/results]``

Shapes are bmf's model presets (``bigmodel_fast/presets``): ``small`` = hidden 256, 4 layers, 4 heads, MLP 1024;
``tiny`` = 128 / 2 / 4 / 512; vocabulary 8000, 7 labels, dropout 0.1 (embeddings, attention, residuals, classifier
input) in both models; the transformers config is bmf's own mapping (``bigmodel_fast.hf.config_map.to_hf_config``).

Batches (seeded, the same for every contender): 16 rows, one of the full 128 ids and the rest of 16-128 (uniform),
right-padded to 128 with an attention mask; [CLS] ... [SEP] framing with random ids between. About 30% of the real
tokens carry a label (word starts, as first-sub-token labelling gives: 70% ``O``, the rest uniform over the 6 entity
tags); every other position, the frame and the padding are -100.

A step is: pad the rows (``pad_batch``), forward, loss, backward, clip the global grad norm to 1.0, AdamW step,
``zero_grad(set_to_none=True)``, ``loss.item()`` (``bench_pretrain_step.Contender``). The loss is the mean
cross-entropy over the labelled positions: bmf's is ``finetune_token._batch_loss`` itself (the code ``bmf finetune
--task token`` runs), transformers' is the model's own ``labels=`` loss. Contenders run interleaved round-robin (the
order rotating), the first ``--warmup`` steps are not counted, medians are reported with the 1-minute load average
before and after.

- ``bmf``: ``TokenClassifier`` (``registry.build_model(cfg, "token_classify")``), ``build_optimizer`` (fused AdamW,
  decay on matrices only); training batches run unpadded (only the real tokens go through projections and MLPs).
- ``bmf, unpad off``: the same, padded layout throughout.
- ``transformers``: ``BertForTokenClassification`` with ``attn_implementation="sdpa"``, ``torch.optim.AdamW``
  defaults (foreach); ``transformers, fused AdamW``: the same with ``fused=True``.

``ratio`` = the ``transformers`` row's median / this row's (> 1: faster than transformers' default loop).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain_step import bmf_optimizer, build_contenders, cpu_name, hf_sdpa, user_adamw  # noqa: E402

from bigmodel_fast.data.classification import pad_batch  # noqa: E402
from bigmodel_fast.data.token_inputs import TokenWindows  # noqa: E402
from bigmodel_fast.data.token_windows import IGNORE_INDEX  # noqa: E402
from bigmodel_fast.hf.config_map import to_hf_config  # noqa: E402
from bigmodel_fast.models import registry  # noqa: E402
from bigmodel_fast.models.config import ModelConfig  # noqa: E402
from bigmodel_fast.models.presets import load_preset  # noqa: E402
from bigmodel_fast.train.finetune_token import _batch_loss  # noqa: E402

VOCAB, SEQ, BATCH, LABELS = 8000, 128, 16, 7
PAD, CLS, SEP = 0, 2, 3
LABELLED, MIN_LEN = 0.3, 16
CPU = torch.device("cpu")
COLUMNS = ["shape", "contender", "median_step_ms", "mean_step_ms", "tokens_per_s", "real_tokens_per_s", "ratio",
           "steps", "params", "hidden", "layers", "heads", "intermediate", "seq_len", "batch", "real_share",
           "labelled_share", "loadavg_before", "loadavg_after", "cpu", "torch_threads", "torch", "transformers",
           "date"]


def make_batches(n: int, seed: int = 0) -> tuple[TokenWindows, list[np.ndarray]]:
    """``n`` batches of ``BATCH`` rows (module docstring) as one ``TokenWindows`` and the row indices of each."""
    rng = np.random.default_rng(seed)
    seqs, targets = [], []
    for _ in range(n):
        lengths = [SEQ, *rng.integers(MIN_LEN, SEQ + 1, size=BATCH - 1).tolist()]
        for length in lengths:
            seqs.append([CLS, *rng.integers(7, VOCAB, size=length - 2).tolist(), SEP])
            starts = rng.random(length) < LABELLED
            starts[[0, -1]] = False
            tags = np.where(rng.random(length) < 0.7, 0, rng.integers(1, LABELS, size=length))
            targets.append(np.where(starts, tags, IGNORE_INDEX).tolist())
    return TokenWindows(seqs=seqs, targets=targets), [np.arange(k * BATCH, (k + 1) * BATCH) for k in range(n)]


def model_config(shape: str) -> ModelConfig:
    preset = {k: v for k, v in load_preset(shape).items() if k != "max_position"}
    return ModelConfig(arch="bert", vocab_size=VOCAB, max_position=SEQ, num_labels=LABELS,
                       label_names=["O", *[f"{p}-T{i}" for i in range(3) for p in "BI"]], **preset)


def contenders(cfg: ModelConfig, windows: TokenWindows):
    from transformers import BertConfig, BertForTokenClassification

    def bmf_model(unpad: bool = True):
        torch.manual_seed(0)
        m = registry.build_model(cfg, "token_classify")
        m.backbone.unpad = unpad
        return m

    def bmf_loss(m, b):
        return _batch_loss(m, windows, b["idx"], b["count"], CPU, "off", PAD)

    def hf_model():
        torch.manual_seed(0)
        return hf_sdpa(BertForTokenClassification,
                       BertConfig.from_dict(to_hf_config(cfg, "bert", "BertForTokenClassification")))

    def hf_loss(m, b):
        ids, mask = pad_batch([windows.seqs[i] for i in b["idx"]], PAD)
        labels, _ = pad_batch([windows.targets[i] for i in b["idx"]], IGNORE_INDEX)
        return m(input_ids=ids, attention_mask=mask.long(), labels=labels).loss

    return build_contenders([
        ("bmf", bmf_model, bmf_optimizer, bmf_loss),
        ("bmf, unpad off", lambda: bmf_model(unpad=False), bmf_optimizer, bmf_loss),
        ("transformers", hf_model, lambda m: user_adamw(m, False), hf_loss),
        ("transformers, fused AdamW", hf_model, lambda m: user_adamw(m, True), hf_loss),
    ])


def run(shape: str, steps: int, warmup: int) -> list[dict]:
    cfg = model_config(shape)
    windows, idx = make_batches(warmup + steps)
    data = [{"idx": i, "count": sum(t != IGNORE_INDEX for r in i for t in windows.targets[r])} for i in idx]
    real = sum(len(s) for s in windows.seqs)
    load_before = os.getloadavg()[0]
    cs = contenders(cfg, windows)
    losses = {c.name: [] for c in cs}
    for i in range(warmup + steps):
        for c in cs[i % len(cs):] + cs[: i % len(cs)]:
            losses[c.name].append(c.step(data[i], False))
    first = {name: f"{v[0]:.3f}" for name, v in losses.items()}
    print(f"{shape}: first-step losses {first} (ln {LABELS} = {np.log(LABELS):.3f})", flush=True)
    med = {c.name: statistics.median(c.times[warmup:]) for c in cs}
    meta = {"shape": shape, "steps": steps, "hidden": cfg.hidden_size, "layers": cfg.num_layers,
            "heads": cfg.num_heads, "intermediate": cfg.intermediate_size, "seq_len": SEQ, "batch": BATCH,
            "real_share": f"{real / (len(windows.seqs) * SEQ):.3f}",
            "labelled_share": f"{sum(d['count'] for d in data) / real:.3f}",
            "loadavg_before": f"{load_before:.2f}", "loadavg_after": f"{os.getloadavg()[0]:.2f}", "cpu": cpu_name(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "date": datetime.date.today().isoformat()}
    rows = []
    for c in cs:
        t = med[c.name]
        rows.append({**meta, "contender": c.name, "median_step_ms": f"{1e3 * t:.1f}",
                     "mean_step_ms": f"{1e3 * statistics.fmean(c.times[warmup:]):.1f}",
                     "tokens_per_s": f"{BATCH * SEQ / t:.0f}", "real_tokens_per_s": f"{real / len(data) / t:.0f}",
                     "ratio": f"{med['transformers'] / t:.2f}", "params": c.params})
    return rows


def write(rows: list[dict], out: Path) -> None:
    r0 = rows[0]
    lines = [f"# Token-classification fine-tuning step, CPU: bmf TokenClassifier vs transformers "
             f"BertForTokenClassification ({r0['date']})", "",
             f"{r0['cpu']}, {r0['torch_threads']} torch threads; torch {r0['torch']}, transformers "
             f"{r0['transformers']}. BERT, vocab {VOCAB}, {LABELS} labels, batch {BATCH} x seq {SEQ}, fp32, dropout "
             f"0.1 in both, SDPA attention for transformers. Rows of 16-128 real ids with attention masks "
             f"({float(r0['real_share']):.0%} of the positions real), {float(r0['labelled_share']):.0%} of the real "
             "tokens labelled (first-sub-token style, the rest -100). Step = pad + forward + loss + backward + clip "
             f"1.0 + AdamW + zero_grad; interleaved round-robin, medians of {r0['steps']} steps after the warm-up. "
             "`ratio` = transformers (default foreach AdamW) median / this row's (> 1: faster). Shared host: 1-minute "
             "load average before / after each shape on every row.", "",
             "| shape (E/L/H/MLP) | contender | median step ms | mean step ms | tokens/s (padded) | real tokens/s "
             "| ratio | params | load before / after |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['shape']} ({r['hidden']}/{r['layers']}/{r['heads']}/{r['intermediate']}) | "
                     f"{r['contender']} | {r['median_step_ms']} | {r['mean_step_ms']} | {r['tokens_per_s']} | "
                     f"{r['real_tokens_per_s']} | {r['ratio']} | {r['params']} | {r['loadavg_before']} / "
                     f"{r['loadavg_after']} |")
    lines += ["", "bmf's params include its BERT backbone's tanh pooler (E x E + E), which token classification "
              "never uses (no gradient, so AdamW skips it); BertForTokenClassification is built without one."]
    out.mkdir(parents=True, exist_ok=True)
    (out / "token_step_cpu.md").write_text("\n".join(lines) + "\n")
    with open(out / "token_step_cpu.csv", "w", newline="") as f:
        table = csv.DictWriter(f, fieldnames=COLUMNS)
        table.writeheader()
        table.writerows(rows)
    print("\n".join(lines[4:]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="small,tiny", help="comma-separated bmf presets (small, tiny)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    args = ap.parse_args(argv)
    rows = []
    for shape in args.shapes.split(","):
        rows += run(shape, args.steps, args.warmup)
        write(rows, Path(args.out))


if __name__ == "__main__":
    main()
