"""Benchmark: one pretraining step of bmf vs transformers (BertForPreTraining, GPT2LMHeadModel, SDPA) and vs a
nanoGPT-style minimal GPT (``minimal_gpt.py``), same sizes, same batches, one process, CPU.

Run: ``python benchmarks/train/bench_pretrain_step.py [--sizes small,medium] [--archs bert,gpt] [--steps 6]
[--bf16] [--out benchmarks/results]``

Batches come from bmf's own native ``TokenLoader`` over synthetic shards (documents of 20-400 random ids,
vocabulary 8000): MLM + NSP pairs for BERT (``mlm_labels`` -100 except at the ~15% masked positions, padding in
``attention_mask``), packed causal windows for GPT (``position_ids``, ``cu_seqlens``: documents never attend to each
other in bmf; the others attend across the whole row, as GPT-2 style packing does). Every contender sees batch k at
its step k.

A step is: forward, loss, backward, clip the global grad norm to 1.0 (``clip_grad_norm_``), AdamW step (lr 5e-4,
weight decay 0.01), ``zero_grad(set_to_none=True)``, ``loss.item()``. Contenders run interleaved round-robin (step k of
every contender before step k + 1, the order rotating), so a load change on the shared host hits all alike; the
first ``--warmup`` steps are not counted; the median is reported, with the load average when each size finished.

- ``bmf``: ``build_pretraining_model`` and ``build_optimizer`` (fused AdamW, decay on matrices only), its defaults
  (GPT: packed with ``cu_seqlens``; BERT: padded batches run unpadded). Rows ``bmf, pack off`` (GPT: plain causal
  rows, like the others), ``bmf, varlen loop`` (GPT: ``packed_dense = False``, the per-document loop of
  ``ops.attention.varlen_attention`` - what bmf did before the block mask), ``bmf, unpad off`` (BERT).
- ``transformers``: the HF model with ``attn_implementation="sdpa"``, ``torch.optim.AdamW`` defaults (foreach), and
  ``transformers, fused AdamW``.
- ``minimal GPT``: ``minimal_gpt.MinimalGPT`` with fused AdamW.
- Dropout 0.1 on embeddings / residuals everywhere; attention dropout 0.1 for BERT (all), 0 for GPT (all: bmf's
  packed attention applies none).
- ``--bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)`` for the forward (small size only).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minimal_gpt import MinimalGPT, MinimalGPTConfig  # noqa: E402

from bigmodel_fast.data.loader import TokenLoader  # noqa: E402
from bigmodel_fast.data.shards import write_shard  # noqa: E402
from bigmodel_fast.models import build_pretraining_model  # noqa: E402
from bigmodel_fast.models.config import ModelConfig  # noqa: E402
from bigmodel_fast.train.optim import OptimConfig, build_optimizer  # noqa: E402

VOCAB, SEQ, BATCH = 8000, 128, 16
LR, WD, CLIP = 5e-4, 0.01, 1.0
SIZES = {"small": (256, 4, 4), "medium": (384, 6, 6), "large": (512, 8, 8)}  # (E, L, H); MLP width 4E
COLUMNS = ["arch", "size", "precision", "contender", "median_step_ms", "tokens_per_s", "vs_fastest_other", "steps",
           "params", "hidden", "layers", "heads", "seq_len", "batch", "loadavg_1m", "cpu", "torch", "transformers",
           "date"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "cpu"


def make_shards(root: Path) -> Path:
    """Synthetic shards: 3000 documents of 20-400 ids in [7, VOCAB) (ids 0..6 are the special tokens)."""
    rng = np.random.default_rng(0)
    docs = [rng.integers(7, VOCAB, size=int(rng.integers(20, 400))) for _ in range(3000)]
    write_shard(root / "synthetic", docs, VOCAB)
    return root


def batches(shards: Path, mode: str, n: int) -> list[dict]:
    kw = {"pack": True} if mode == "causal" else {"nsp": True}
    with TokenLoader(shards, seq_len=SEQ, batch_size=BATCH, mode=mode, vocab_size=VOCAB, **kw) as loader:
        return [{k: (v.clone() if torch.is_tensor(v) else v) for k, v in loader.batch(i).items()} for i in range(n)]


class Contender:
    """A model, its optimizer and ``loss(batch)``; ``step(batch, bf16)`` times one whole training step."""

    def __init__(self, name, model, opt, loss_fn):
        self.name, self.model, self.opt, self.loss_fn = name, model.train(), opt, loss_fn
        self.times: list[float] = []
        self.params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

    def step(self, batch: dict, bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = self.loss_fn(self.model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        value = loss.item()
        self.times.append(time.perf_counter() - t0)
        return value


def user_adamw(model, fused: bool):
    return torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD, **({"fused": True} if fused else {}))


def bmf_optimizer(model):
    return build_optimizer(model, OptimConfig(lr=LR, weight_decay=WD))


def build_contenders(specs) -> list[Contender]:
    """``Contender(name, model, optimizer(model), loss)`` for each ``(name, build_model, optimizer, loss)``."""
    out = []
    for name, build, optimizer, loss in specs:
        model = build()
        out.append(Contender(name, model, optimizer(model), loss))
    return out


def bmf_pretraining_model(arch: str, e: int, n_layers: int, h: int, **backbone_attrs):
    """bmf's pretraining model of ``arch`` at this size (seed 0), with ``backbone_attrs`` set on its backbone."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, vocab_size=VOCAB, hidden_size=e, num_layers=n_layers, num_heads=h,
                      intermediate_size=4 * e, max_position=SEQ)
    m = build_pretraining_model(cfg)
    for name, value in backbone_attrs.items():
        setattr(m.backbone, name, value)
    return m


def gpt_contenders(e: int, n_layers: int, h: int) -> list[Contender]:
    from transformers import GPT2Config, GPT2LMHeadModel

    def bmf_model(packed_dense: bool = True):
        return bmf_pretraining_model("gpt", e, n_layers, h, packed_dense=packed_dense)

    def packed(m, b):
        return m(b["input_ids"], b["labels"], position_ids=b["position_ids"], cu_seqlens=b["cu_seqlens"],
                 max_seqlen=b["max_seqlen"])["loss"]

    def plain(m, b):
        return m(b["input_ids"], b["labels"])["loss"]

    def hf_model():
        torch.manual_seed(0)
        cfg = GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=e, n_layer=n_layers, n_head=h, n_inner=4 * e,
                         activation_function="gelu", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.0,
                         layer_norm_epsilon=1e-5, bos_token_id=1, eos_token_id=2)
        return hf_sdpa(GPT2LMHeadModel, cfg)

    def hf_loss(m, b):
        return m(input_ids=b["input_ids"], labels=b["input_ids"]).loss  # HF shifts the labels itself

    def mini_model():
        torch.manual_seed(0)
        return MinimalGPT(MinimalGPTConfig(VOCAB, e, n_layers, h, SEQ, 4 * e))

    return build_contenders([
        ("bmf", bmf_model, bmf_optimizer, packed),
        ("bmf, pack off", bmf_model, bmf_optimizer, plain),
        ("bmf, varlen loop", lambda: bmf_model(packed_dense=False), bmf_optimizer, packed),
        ("transformers", hf_model, lambda m: user_adamw(m, False), hf_loss),
        ("transformers, fused AdamW", hf_model, lambda m: user_adamw(m, True), hf_loss),
        ("minimal GPT", mini_model, lambda m: user_adamw(m, True), lambda m, b: m(b["input_ids"], b["labels"])[1]),
    ])


def bert_contenders(e: int, n_layers: int, h: int) -> list[Contender]:
    from transformers import BertConfig, BertForPreTraining

    def bmf_model(unpad: bool = True):
        return bmf_pretraining_model("bert", e, n_layers, h, unpad=unpad)

    def bmf_loss(m, b):
        return m(b["input_ids"], b["token_type_ids"], b["attention_mask"], b["mlm_labels"], b["nsp_labels"])["loss"]

    def hf_model():
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=VOCAB, hidden_size=e, num_hidden_layers=n_layers, num_attention_heads=h,
                         intermediate_size=4 * e, max_position_embeddings=SEQ, hidden_act="gelu")
        return hf_sdpa(BertForPreTraining, cfg)

    def hf_loss(m, b):
        return m(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                 attention_mask=b["attention_mask"].long(), labels=b["mlm_labels"],
                 next_sentence_label=b["nsp_labels"]).loss

    return build_contenders([
        ("bmf", bmf_model, bmf_optimizer, bmf_loss),
        ("bmf, unpad off", lambda: bmf_model(unpad=False), bmf_optimizer, bmf_loss),
        ("transformers", hf_model, lambda m: user_adamw(m, False), hf_loss),
        ("transformers, fused AdamW", hf_model, lambda m: user_adamw(m, True), hf_loss),
    ])


def hf_sdpa(cls, cfg):
    """``cls(cfg)`` with SDPA attention (checked: the model reports it)."""
    cfg._attn_implementation = "sdpa"
    model = cls(cfg)
    if model.config._attn_implementation != "sdpa":
        raise RuntimeError(f"{cls.__name__}: attention is {model.config._attn_implementation!r}, expected 'sdpa'")
    return model


def run(arch: str, size: str, bf16: bool, data: list[dict], steps: int, warmup: int) -> list[dict]:
    e, n_layers, h = SIZES[size]
    contenders = (gpt_contenders if arch == "gpt" else bert_contenders)(e, n_layers, h)
    for i in range(warmup + steps):
        order = contenders[i % len(contenders):] + contenders[: i % len(contenders)]
        for c in order:
            c.step(data[i % len(data)], bf16)
    med = {c.name: statistics.median(c.times[warmup:]) for c in contenders}
    fastest_other = min(t for name, t in med.items() if not name.startswith("bmf"))
    load = os.getloadavg()[0]
    meta = {"arch": arch, "size": size, "precision": "bf16" if bf16 else "fp32", "steps": steps, "hidden": e,
            "layers": n_layers, "heads": h, "seq_len": SEQ, "batch": BATCH, "loadavg_1m": f"{load:.2f}",
            "cpu": cpu_name(), "torch": torch.__version__, "transformers": transformers.__version__,
            "date": datetime.date.today().isoformat()}
    rows = []
    for c in contenders:
        t = med[c.name]
        rows.append({**meta, "contender": c.name, "median_step_ms": f"{1e3 * t:.1f}",
                     "tokens_per_s": f"{BATCH * SEQ / t:.0f}", "vs_fastest_other": f"{fastest_other / t:.2f}",
                     "params": c.params})
    return rows


def write(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pretrain_step_cpu.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    first = rows[0]
    lines = [f"# Pretraining step, CPU: bmf vs transformers vs a minimal GPT ({first['date']})", "",
             f"{first['cpu']}, torch {first['torch']}, transformers {first['transformers']}; batch {BATCH} x "
             f"seq {SEQ}, vocab {VOCAB}; fwd + bwd + clip + AdamW; interleaved round-robin, medians of "
             f"{first['steps']} steps; `vs fastest other` = fastest non-bmf step time / this row's (> 1: faster). "
             "Shared host: load average (1 min) on every row.", "",
             "| arch | size (E/L/H) | precision | contender | step ms | tokens/s | vs fastest other | params | load |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['size']} ({r['hidden']}/{r['layers']}/{r['heads']}) | {r['precision']} | "
                     f"{r['contender']} | {r['median_step_ms']} | {r['tokens_per_s']} | {r['vs_fastest_other']} | "
                     f"{r['params']} | {r['loadavg_1m']} |")
    (out / "pretrain_step_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[5:]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default="gpt,bert")
    ap.add_argument("--sizes", default="small,medium")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="also bf16 autocast rows (small size)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        shards = make_shards(Path(tmp))
        n = args.warmup + args.steps
        data = {"gpt": batches(shards, "causal", n), "bert": batches(shards, "mlm", n)}
    for arch in args.archs.split(","):
        for size in args.sizes.split(","):
            for bf16 in ([False, True] if args.bf16 and size == "small" else [False]):
                part = run(arch, size, bf16, data[arch], args.steps, args.warmup)
                rows += part
                best = max(part, key=lambda r: float(r["vs_fastest_other"]) if r["contender"] == "bmf" else -1)
                print(f"{arch} {size} {'bf16' if bf16 else 'fp32'}: bmf {best['vs_fastest_other']}x the fastest "
                      f"other (load {best['loadavg_1m']})", flush=True)
                write(rows, Path(args.out))


if __name__ == "__main__":
    main()
