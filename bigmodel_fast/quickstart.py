"""``bmf quickstart``: prepare -> pretrain -> finetune -> evaluate -> export -> predict on the embedded samples.

The pretraining corpus is the shipped English (Python docs) + Chinese (People's Daily 1998) sample plus the
unlabelled training texts of the task. ``--task classify`` (default) fine-tunes on the shipped Chinese
review-sentiment set; ``--task ner`` on the shipped People's Daily 1998-01 NER sample (person / place /
organisation, character-level BIO). The test report carries a baseline fitted on the same training file (TF-IDF +
logistic regression; most-frequent tag for NER), and with ``--compare-random`` (default on) the same fine-tuning
is run once more from a randomly initialised backbone, so the summary shows what the pretraining was worth.
"""

from __future__ import annotations

import gzip
import itertools
import json
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
    ner_max_len: int  # --task ner: window length (sentences longer than this are split, not cut)
    ner_epochs: int | None  # --task ner: fine-tuning epochs (None: auto)


SCALES = {
    # ~5 minutes on an idle 2-core CPU, both tasks (README: the measured seconds)
    "default": Scale(max_docs=0, max_examples=0, vocab_size=8000, character_coverage=0.9995, pretrain_steps=600,
                     seq_len=128, batch_size=32, finetune_epochs=2, max_len=64, ner_max_len=128, ner_epochs=None),
    # seconds: for tests
    "smoke": Scale(max_docs=60, max_examples=200, vocab_size=1000, character_coverage=0.98, pretrain_steps=6,
                   seq_len=32, batch_size=8, finetune_epochs=1, max_len=32, ner_max_len=32, ner_epochs=1),
}


QUICKSTART_TASKS = ("classify", "ner")


@dataclass
class QuickstartConfig:
    """Settings of ``bmf quickstart`` (each field's metadata is also its flag: :mod:`bigmodel_fast.config_cli`)."""

    out: str = setting("bmf_quickstart", help="where every artefact goes")
    task: str = setting("classify", choices=QUICKSTART_TASKS,
                        help="classify: review sentiment; ner: People's Daily person / place / organisation tags")
    scale: str = setting("default", choices=lambda: sorted(SCALES), help="smoke: a seconds-long run for tests")
    compare_random: bool = setting(True, help="also fine-tune from a randomly initialised backbone (same settings) "
                                              "and report both, to show what the pretraining is worth")
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


def random_backbone(pretrained: str | Path, out: Path, seed: int) -> Path:
    """A pretraining checkpoint at ``out`` with ``pretrained``'s config and tokenizer but freshly initialised
    weights (seeded): the starting point of the no-pretraining comparison."""
    import torch

    from . import checkpoint as ckpt
    from .models import build_pretraining_model
    from .models.config import ModelConfig

    cfg_dict, _ = ckpt.read_meta(pretrained)
    torch.manual_seed(seed)
    model = build_pretraining_model(ModelConfig.from_dict(cfg_dict))
    return ckpt.save_checkpoint(out, model, cfg_dict, ckpt.tokenizer_path(pretrained),
                                {"kind": "pretrain", "step": 0, "note": "random initialisation (no pretraining)"})


def _text_rows(tagged: Path, dst: Path, n: int) -> Path:
    """The sentences of a tagged JSONL sample as ``{"text"}`` rows (characters joined): pretraining text."""
    with gzip.open(tagged, "rt", encoding="utf-8") as f, gzip.open(dst, "wt", encoding="utf-8") as g:
        for line in itertools.islice(f, n or None):
            g.write(json.dumps({"text": "".join(json.loads(line)["tokens"])}, ensure_ascii=False) + "\n")
    return dst


def quickstart(cfg: QuickstartConfig) -> dict:
    """Run every stage; prints where each artefact went and the final metrics, returns them as a dict."""
    from .data.prepare import PrepareConfig, prepare
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
    if cfg.task == "ner":
        task_files = {k: _head(p, out / "inputs" / p.name, s.max_examples) for k, p in samples.ner_paths().items()}
        task_text = _text_rows(task_files["train"], out / "inputs" / "ner_train_text.jsonl.gz", 0)
    else:
        task_files = {k: _head(p, out / "inputs" / p.name, s.max_examples)
                      for k, p in samples.sentiment_paths().items()}
        task_text = task_files["train"]

    data_dir, pre_dir, ft_dir, bundle = out / "data", out / "pretrain", out / "finetune", out / "bundle"
    # the pretraining corpus: English + Chinese prose, plus the (unlabelled) training texts of the task, so the
    # encoder has seen the fine-tuning domain; validation and test texts stay unseen. The web-page quality rules
    # (Gopher, C4, FineWeb) are off here: the samples are curated, and one-paragraph newspaper documents and
    # one-line reviews are far below their document-length thresholds. PII masking and exact + near dedup stay on.
    prep_cfg = PrepareConfig(inputs=[str(p) for p in [*corpus, task_text]], out=str(data_dir),
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
    run = _ner_stages if cfg.task == "ner" else _classify_stages
    result = run(cfg, s, stage, pre["checkpoint"], task_files, ft_dir, bundle, out)

    summary = {
        "task": cfg.task,
        "scale": cfg.scale,
        "documents": {"read": stats["read"]["documents"], "train": stats["train"]["documents"],
                      "valid": stats["valid"]["documents"], "duplicates": stats["dedup"]["duplicates"],
                      "pii_masked": stats["pii"]["masked"]},
        "tokens": {"train": stats["train"]["tokens"], "valid": stats["valid"]["tokens"]},
        "pretrain": {"steps": pre["steps"], "eval_losses": pre.get("eval_losses"),
                     "tokens_per_s": pre.get("tokens_per_s"), "heldout": pre.get("heldout")},
        **result["summary"],
        "seconds": {**timings, "total": round(time.time() - t_all, 1)},
        "commands": commands,
        "artefacts": {"data": str(data_dir), "pretrain_checkpoint": pre["checkpoint"], **result["artefacts"],
                      "bundle": str(bundle), "test_report": str(out / "eval_test.json"), "metrics": pre["metrics"]},
    }
    write_json(out / "quickstart.json", summary)
    (out / "commands.sh").write_text("#!/bin/sh\n# the bmf commands this quickstart ran, stage by stage\nset -e\n"
                                     + "\n".join(commands) + "\n", encoding="utf-8")
    print("\n== artefacts ==")
    for name, path in summary["artefacts"].items():
        print(f"  {name:<22} {path}")
    print("\n== summary ==")
    for line in result["lines"]:
        print(line)
    print(f"total {summary['seconds']['total']} s; summary in {out / 'quickstart.json'}")
    return summary


def _compare_line(name: str, pretrained: float, random: float | None, baseline: float) -> str:
    if random is None:
        return f"test {name}: pretrained {pretrained:.4f}, baseline {baseline:.4f}"
    verdict = ("pretraining helped" if pretrained > random else
               "pretraining did NOT help at this scale (the randomly initialised backbone did as well or better)")
    return (f"test {name}: pretrained backbone {pretrained:.4f}, random backbone {random:.4f}, baseline "
            f"{baseline:.4f} -> {verdict}")


def _classify_stages(cfg, s, stage, pretrained, files, ft_dir, bundle, out) -> dict:
    from .eval.predict import Predictor
    from .train.finetune import FinetuneConfig

    # fine-tuning runs on bmf finetune's own defaults (auto lr / warmup, macro-F1 selection) but for two things that
    # keep the quickstart (two fine-tuning runs: pretrained and random backbone) within ~5 minutes on 2 cores: 2
    # epochs instead of auto's 3 (the 13.9k reviews give 435 steps per epoch) and --max-len 64 (median review: 46
    # characters)
    ft_cfg = FinetuneConfig(checkpoint=str(pretrained), train=str(files["train"]), valid=str(files["valid"]),
                            out=str(ft_dir), max_len=s.max_len, epochs=s.finetune_epochs, seed=cfg.seed,
                            device=cfg.device, progress=cfg.progress)
    ft, report, random = _train_and_test(cfg, stage, pretrained, ft_cfg, files, out, bundle)
    examples = ["这本书写得非常好，强烈推荐！", "质量太差了，完全不值这个价钱。"]
    preds = stage("predict", lambda: Predictor(bundle, device="cpu").predict(examples),
                  ["bmf", "predict", "--model", str(bundle), *[x for t in examples for x in ("--text", t)]])
    for text, p in zip(examples, preds):
        print(f"  {text} -> {p['label']} {p['probabilities']}")
    base = report["baseline"]
    test = {"accuracy": report["accuracy"], "macro_f1": report["macro"]["f1"], "examples": report["examples"],
            "baseline": {"name": base["baseline"], "accuracy": base["accuracy"], "macro_f1": base["macro"]["f1"]}}
    if random is not None:
        test["random_init"] = {"accuracy": random["accuracy"], "macro_f1": random["macro"]["f1"]}
    lines = [f"test accuracy {report['accuracy']:.4f}, macro F1 {report['macro']['f1']:.4f} on "
             f"{report['examples']} examples",
             _compare_line("macro-F1", report["macro"]["f1"], None if random is None else random["macro"]["f1"],
                           base["macro"]["f1"])]
    if base["macro"]["f1"] > report["macro"]["f1"]:
        lines.append(f"note: the TF-IDF + logistic-regression baseline beats the model (macro-F1 "
                     f"{base['macro']['f1']:.4f} vs {report['macro']['f1']:.4f}): the quickstart model is tiny")
    return {"summary": {"finetune": {"steps": ft["steps"], "best_valid_accuracy": ft["best_valid_accuracy"]},
                        "test": test},
            "artefacts": {"classifier_checkpoint": ft["checkpoint"]}, "lines": lines}


def _train_and_test(cfg, stage, pretrained, ft_cfg, files, out, bundle):
    """Fine-tune, evaluate on the test file with the baseline beside, the same from a random backbone (when asked),
    export: ``(finetune summary, test report, random-backbone test report or None)``."""
    from .eval.evaluate import evaluate, format_evaluation
    from .export.bundle import export_bundle
    from .train.finetune import finetune

    ft = stage("finetune", lambda: finetune(ft_cfg), command_line("bmf finetune", ft_cfg))
    eval_cmd = ["bmf", "evaluate", "--model", ft["checkpoint"], "--data", str(files["test"]), "--baseline",
                str(files["train"]), "--out", str(out / "eval_test.json")]
    report = stage("evaluate", lambda: evaluate(ft["checkpoint"], files["test"], out=out / "eval_test.json",
                                                device=cfg.device, baseline=files["train"]), eval_cmd)
    print(format_evaluation(report))
    random = _random_run(cfg, stage, pretrained, ft_cfg, files, out, finetune, evaluate)
    stage("export", lambda: export_bundle(ft["checkpoint"], bundle),
          ["bmf", "export", "--checkpoint", ft["checkpoint"], "--out", str(bundle)])
    return ft, report, random


def _random_run(cfg, stage, pretrained, ft_cfg, files, out, finetune, evaluate):
    """The same fine-tuning from a randomly initialised backbone, evaluated on the test file; None when off."""
    if not cfg.compare_random:
        return None
    from dataclasses import replace

    rand = random_backbone(pretrained, out / "random_init", cfg.seed)
    rand_cfg = replace(ft_cfg, checkpoint=str(rand), out=str(out / "finetune_random"))
    ft = stage("finetune (random init)", lambda: finetune(rand_cfg), command_line("bmf finetune", rand_cfg))
    cmd = ["bmf", "evaluate", "--model", ft["checkpoint"], "--data", str(files["test"]), "--out",
           str(out / "eval_test_random.json")]
    return stage("evaluate (random init)", lambda: evaluate(ft["checkpoint"], files["test"],
                                                            out=out / "eval_test_random.json", device=cfg.device), cmd)


NER_EXAMPLES = ["江泽民主席在北京会见了联合国秘书长安南。", "新华社记者报道，上海市人民政府今天召开会议。"]


def _ner_stages(cfg, s, stage, pretrained, files, ft_dir, bundle, out) -> dict:
    from .eval.token_predict import TokenPredictor
    from .train.finetune import FinetuneConfig

    ft_cfg = FinetuneConfig(checkpoint=str(pretrained), train=str(files["train"]), valid=str(files["valid"]),
                            out=str(ft_dir), task="token", max_len=s.ner_max_len, epochs=s.ner_epochs,
                            seed=cfg.seed, device=cfg.device, progress=cfg.progress)
    ft, report, random = _train_and_test(cfg, stage, pretrained, ft_cfg, files, out, bundle)
    preds = stage("predict", lambda: TokenPredictor(bundle, device="cpu").predict(NER_EXAMPLES),
                  ["bmf", "predict", "--model", str(bundle), *[x for t in NER_EXAMPLES for x in ("--text", t)]])
    for text, p in zip(NER_EXAMPLES, preds):
        print(f"  {text} -> " + (", ".join(f"{e['text']}/{e['type']}@{e['start']}" for e in p["entities"]) or "-"))
    ent, base = report["entity"], report["baseline"]
    test = {"entity_micro_f1": ent["micro"]["f1"], "entity_macro_f1": ent["macro"]["f1"],
            "strict_micro_f1": report["strict"]["micro"]["f1"], "token_accuracy": report["token_accuracy"],
            "sentences": report["sentences"], "per_type": ent["per_type"],
            "baseline": {"name": base["baseline"], "entity_micro_f1": base["micro"]["f1"],
                         "token_accuracy": base["token_accuracy"]}}
    if random is not None:
        test["random_init"] = {"entity_micro_f1": random["entity"]["micro"]["f1"],
                               "token_accuracy": random["token_accuracy"]}
    lines = [f"test entity micro-F1 {ent['micro']['f1']:.4f} (strict {report['strict']['micro']['f1']:.4f}), token "
             f"accuracy {report['token_accuracy']:.4f} on {report['sentences']} sentences",
             _compare_line("entity micro-F1", ent["micro"]["f1"],
                           None if random is None else random["entity"]["micro"]["f1"], base["micro"]["f1"])]
    return {"summary": {"finetune": {"steps": ft["steps"], "best_valid": ft["best_valid"]}, "test": test},
            "artefacts": {"token_classifier_checkpoint": ft["checkpoint"]}, "lines": lines}
