"""``bmf quickstart``: prepare -> pretrain -> finetune -> evaluate -> export -> predict on the embedded samples.

The pretraining corpus is the shipped English (Python docs) + Chinese (People's Daily 1998) sample; the
classification task is the shipped Chinese review-sentiment set (deduplicated, split train/valid/test).
"""

from __future__ import annotations

import gzip
import itertools
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from .config_cli import check_fields, command_line, setting
from .data import sample_files as samples
from .jsonio import write_json


@dataclass(frozen=True)
class Scale:
    """How big each stage of the quickstart is."""

    max_docs: int  # documents per corpus file (0 = all)
    max_examples: int  # sentiment examples per split (0 = all)
    vocab_size: int
    character_coverage: float
    pretrain_steps: int
    seq_len: int
    batch_size: int
    finetune_epochs: int | None  # None: bmf finetune's default (auto)
    max_len: int


SCALES = {
    # ~5 minutes on an idle 2-core CPU (measured 298 s, test accuracy 0.845)
    "default": Scale(max_docs=0, max_examples=0, vocab_size=8000, character_coverage=0.9995, pretrain_steps=600,
                     seq_len=128, batch_size=32, finetune_epochs=None, max_len=96),
    # seconds: for tests
    "smoke": Scale(max_docs=60, max_examples=200, vocab_size=1000, character_coverage=0.98, pretrain_steps=6,
                   seq_len=32, batch_size=8, finetune_epochs=1, max_len=32),
}


@dataclass
class QuickstartConfig:
    """Settings of ``bmf quickstart`` (each field's metadata is also its flag: :mod:`bigmodel_fast.config_cli`)."""

    out: str = setting("bmf_quickstart", help="where every artefact goes")
    scale: str = setting("default", choices=lambda: sorted(SCALES), help="smoke: a seconds-long run for tests")
    seed: int = setting(0)
    device: str = setting("auto", help="auto | cpu | cuda | cuda:N")
    progress: bool = setting(True, cli=False)  # flag: the hand-written --no-progress

    def __post_init__(self):
        check_fields(self)


def _head(src: Path, dst: Path, n: int) -> Path:
    """Copy the first ``n`` lines of a (gzipped) JSONL sample, or link the whole file when ``n == 0``."""
    if n == 0:
        return src
    with gzip.open(src, "rt", encoding="utf-8") as f, gzip.open(dst, "wt", encoding="utf-8") as g:
        g.writelines(itertools.islice(f, n))
    return dst


def quickstart(cfg: QuickstartConfig) -> dict:
    """Run every stage; prints where each artefact went and the final metrics, returns them as a dict."""
    from .data.prepare import PrepareConfig, prepare
    from .eval.evaluate import evaluate
    from .eval.metrics import format_report
    from .eval.predict import Predictor
    from .export.bundle import export_bundle
    from .train.finetune import FinetuneConfig, finetune
    from .train.optim import OptimConfig
    from .train.pretrain import PretrainConfig, pretrain
    from .train.pretrain_stats import format_summary

    s = SCALES[cfg.scale]  # a checked name (QuickstartConfig)
    out = Path(cfg.out)
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.time()

    commands: list[str] = []

    def stage(name: str, fn, argv: list[str]):
        t = time.time()
        commands.append(shlex.join(argv))
        print(f"\n== {name} ==\n$ {commands[-1]}", flush=True)
        result = fn()
        timings[name] = round(time.time() - t, 1)
        return result

    corpus = [_head(p, out / "inputs" / p.name, s.max_docs) for p in samples.corpus_paths()]
    sent = {k: _head(p, out / "inputs" / p.name, s.max_examples) for k, p in samples.sentiment_paths().items()}

    data_dir, pre_dir, ft_dir, bundle = out / "data", out / "pretrain", out / "finetune", out / "bundle"
    # the pretraining corpus: English + Chinese prose, plus the (unlabelled) training reviews, so the encoder has
    # seen the fine-tuning domain; validation and test reviews stay unseen. The web-page quality rules (Gopher,
    # C4, FineWeb) are off here: the samples are curated, and one-paragraph newspaper documents and one-line
    # reviews are far below their document-length thresholds. PII masking and exact + near dedup stay on.
    prep_cfg = PrepareConfig(inputs=[str(p) for p in [*corpus, sent["train"]]], out=str(data_dir),
                             vocab_size=s.vocab_size, character_coverage=s.character_coverage, seed=cfg.seed,
                             quality=False, progress=cfg.progress)
    stats = stage("prepare", lambda: prepare(prep_cfg), command_line("bmf prepare", prep_cfg))
    pre_cfg = PretrainConfig(
        data=str(data_dir), out=str(pre_dir), arch="bert", preset="tiny", seq_len=s.seq_len,
        batch_size=s.batch_size, max_steps=s.pretrain_steps, eval_every=max(s.pretrain_steps // 3, 1),
        eval_batches=4, save_every=s.pretrain_steps, log_every=max(s.pretrain_steps // 30, 1),
        optim=OptimConfig(lr=1e-3, warmup_steps=max(s.pretrain_steps // 10, 1)), seed=cfg.seed,
        device=cfg.device, progress=cfg.progress)
    pre = stage("pretrain", lambda: pretrain(pre_cfg), command_line("bmf pretrain", pre_cfg))
    print(format_summary(pre))
    # fine-tuning runs on bmf finetune's own defaults (auto lr / epochs / warmup, macro-F1 selection); only the
    # input length is shorter than the default 128 (the reviews are short)
    ft_cfg = FinetuneConfig(checkpoint=str(pre_dir / "checkpoint"), train=str(sent["train"]), valid=str(sent["valid"]),
                            out=str(ft_dir), max_len=s.max_len, epochs=s.finetune_epochs, seed=cfg.seed,
                            device=cfg.device, progress=cfg.progress)
    ft = stage("finetune", lambda: finetune(ft_cfg), command_line("bmf finetune", ft_cfg))
    eval_cmd = ["bmf", "evaluate", "--model", ft["checkpoint"], "--data", str(sent["test"]), "--out",
                str(out / "eval_test.json")]
    report = stage("evaluate", lambda: evaluate(ft["checkpoint"], sent["test"], out=out / "eval_test.json",
                                                device=cfg.device), eval_cmd)
    print(format_report(report))
    stage("export", lambda: export_bundle(ft["checkpoint"], bundle),
          ["bmf", "export", "--checkpoint", ft["checkpoint"], "--out", str(bundle)])
    examples = ["这本书写得非常好，强烈推荐！", "质量太差了，完全不值这个价钱。"]
    preds = stage("predict", lambda: Predictor(bundle, device="cpu").predict(examples),
                  ["bmf", "predict", "--model", str(bundle), *[x for t in examples for x in ("--text", t)]])
    for text, p in zip(examples, preds):
        print(f"  {text} -> {p['label']} {p['probabilities']}")

    summary = {
        "scale": cfg.scale,
        "documents": {"read": stats["read"]["documents"], "train": stats["train"]["documents"],
                      "valid": stats["valid"]["documents"], "duplicates": stats["dedup"]["duplicates"],
                      "pii_masked": stats["pii"]["masked"]},
        "tokens": {"train": stats["train"]["tokens"], "valid": stats["valid"]["tokens"]},
        "pretrain": {"steps": pre["steps"], "eval_losses": pre.get("eval_losses"),
                     "tokens_per_s": pre.get("tokens_per_s"), "heldout": pre.get("heldout")},
        "finetune": {"steps": ft["steps"], "best_valid_accuracy": ft["best_valid_accuracy"]},
        "test": {"accuracy": report["accuracy"], "macro_f1": report["macro"]["f1"], "examples": report["examples"]},
        "seconds": {**timings, "total": round(time.time() - t_all, 1)},
        "commands": commands,
        "artefacts": {"data": str(data_dir), "pretrain_checkpoint": pre["checkpoint"],
                      "classifier_checkpoint": ft["checkpoint"], "bundle": str(bundle),
                      "test_report": str(out / "eval_test.json"), "metrics": pre["metrics"]},
    }
    write_json(out / "quickstart.json", summary)
    (out / "commands.sh").write_text("#!/bin/sh\n# the bmf commands this quickstart ran, stage by stage\nset -e\n"
                                     + "\n".join(commands) + "\n", encoding="utf-8")
    print("\n== artefacts ==")
    for name, path in summary["artefacts"].items():
        print(f"  {name:<22} {path}")
    print(f"\ntest accuracy {report['accuracy']:.4f}, macro F1 {report['macro']['f1']:.4f} "
          f"on {report['examples']} examples; total {summary['seconds']['total']} s; "
          f"summary in {out / 'quickstart.json'}")
    return summary
