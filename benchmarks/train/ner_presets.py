"""NER quality and cost on the shipped People's Daily 1998-01 split: the quickstart-scale model next to a ``small``
preset BERT pretrained on the same prepared data, both fine-tuned with ``bmf finetune --task token`` on the shipped
train split (selected on valid) and scored on test, beside the most-frequent-tag baseline.

Run after ``bmf quickstart --task ner --out QS`` (its prepared data, its quickstart.json and its test report are
reused)::

    python benchmarks/train/ner_presets.py --quickstart QS [--pretrain-steps 600] [--out benchmarks/results]

Writes ``ner_cpu.csv`` and ``ner_cpu.md`` (machine, versions, date, load average, seconds per stage).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch

from bigmodel_fast.data import sample_files as samples
from bigmodel_fast.eval.evaluate import evaluate
from bigmodel_fast.train.finetune import FinetuneConfig, finetune
from bigmodel_fast.train.optim import OptimConfig
from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

COLUMNS = ["model", "params", "pretrain_steps", "pretrain_s", "finetune_s", "finetune_steps", "test_micro_f1",
           "test_strict_micro_f1", "test_macro_f1", "token_accuracy", "per", "loc", "org", "baseline_micro_f1",
           "loadavg_1m", "cpu", "torch", "date"]


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def row(model: str, params: int, steps: int, pre_s: float, ft_s: float, ft_steps: int, report: dict,
        load: bool = True) -> dict:
    """One result row; ``load`` False: the run was timed elsewhere (the quickstart), its load is not known here."""
    ent = report["entity"]
    f1 = {t.lower(): round(ent["per_type"].get(t, {}).get("f1", 0.0), 4) for t in ("PER", "LOC", "ORG")}
    return {"model": model, "params": params, "pretrain_steps": steps, "pretrain_s": round(pre_s, 1),
            "finetune_s": round(ft_s, 1), "finetune_steps": ft_steps, "test_micro_f1": round(ent["micro"]["f1"], 4),
            "test_strict_micro_f1": round(report["strict"]["micro"]["f1"], 4),
            "test_macro_f1": round(ent["macro"]["f1"], 4), "token_accuracy": round(report["token_accuracy"], 4), **f1,
            "baseline_micro_f1": round(report["baseline"]["micro"]["f1"], 4),
            "loadavg_1m": round(os.getloadavg()[0], 2) if load else "-", "cpu": cpu_name(), "torch": torch.__version__,
            "date": datetime.date.today().isoformat()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quickstart", required=True, help="output directory of `bmf quickstart --task ner`")
    ap.add_argument("--pretrain-steps", type=int, default=600)
    ap.add_argument("--work", default="/tmp/bmf_ner_presets")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    args = ap.parse_args()
    qs, work, out = Path(args.quickstart), Path(args.work), Path(args.out)
    summary = json.loads((qs / "quickstart.json").read_text(encoding="utf-8"))
    if summary.get("task") != "ner":
        raise SystemExit(f"{qs}: not a `bmf quickstart --task ner` output")
    files = samples.ner_paths()
    rows = []
    from bigmodel_fast import checkpoint as ckpt

    def n_params(path) -> int:
        model, _, _ = ckpt.load_model(path, "token_classifier")
        return sum(p.numel() for p in model.parameters())

    quick = json.loads((qs / "eval_test.json").read_text(encoding="utf-8"))
    sec = summary["seconds"]
    rows.append(row("quickstart (tiny preset)", n_params(summary["artefacts"]["token_classifier_checkpoint"]),
                    summary["pretrain"]["steps"], sec["pretrain"], sec["finetune"], summary["finetune"]["steps"],
                    quick, load=False))
    t = time.time()
    pre = pretrain(PretrainConfig(data=str(qs / "data"), out=str(work / "pretrain_small"), arch="bert",
                                  preset="small", seq_len=128, batch_size=32, max_steps=args.pretrain_steps,
                                  eval_every=args.pretrain_steps, eval_batches=4, save_every=args.pretrain_steps,
                                  optim=OptimConfig(lr=1e-3, warmup_steps=max(args.pretrain_steps // 10, 1)),
                                  device="cpu", progress=False))
    pre_s = time.time() - t
    t = time.time()
    ft = finetune(FinetuneConfig(checkpoint=pre["checkpoint"], train=str(files["train"]), valid=str(files["valid"]),
                                 out=str(work / "finetune_small"), task="token", max_len=128, device="cpu",
                                 progress=False))
    ft_s = time.time() - t
    report = evaluate(ft["checkpoint"], files["test"], device="cpu", baseline=files["train"])
    rows.append(row("small preset", n_params(ft["checkpoint"]), args.pretrain_steps, pre_s, ft_s, ft["steps"], report))

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "ner_cpu.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    lines = ["# NER on the shipped People's Daily 1998-01 split (CPU)", "",
             f"{rows[0]['cpu']}, {os.cpu_count()} cores, torch {torch.__version__}, {rows[0]['date']}. Test split: "
             f"{quick['sentences']} sentences; entity scores with seqeval's default semantics (strict IOB2 beside). "
             f"Produced by `benchmarks/train/ner_presets.py`.", "",
             "| model | params | pretrain steps | pretrain s | finetune s (steps) | micro-F1 | strict | macro-F1 | "
             "PER / LOC / ORG F1 | token acc | most-frequent-tag baseline | load |", "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['pretrain_steps']} | {r['pretrain_s']} | "
                     f"{r['finetune_s']} ({r['finetune_steps']}) | {r['test_micro_f1']:.4f} | "
                     f"{r['test_strict_micro_f1']:.4f} | {r['test_macro_f1']:.4f} | {r['per']:.3f} / {r['loc']:.3f} / "
                     f"{r['org']:.3f} | {r['token_accuracy']:.4f} | {r['baseline_micro_f1']:.4f} | "
                     f"{r['loadavg_1m']} |")
    (out / "ner_cpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
