"""Texts longer than ``--max-len``: how many there are, and three ways to feed them to a classifier.

``--long-text`` modes (``budget`` = ``max_len`` minus the classifier's special tokens, 2 for ``[CLS] .. [SEP]``,
0 for GPT-2-style tokenizers):

- ``truncate`` (default): the first ``budget`` tokens, the ids :func:`~.classification.encode_for_classifier`
  gives (a long text is not tokenized whole).
- ``head-tail``: the first ``budget // 4`` tokens and the last ``budget - budget // 4`` (the beginning and the
  conclusion of a document usually say most about it).
- ``chunks``: overlapping windows of ``budget`` tokens, window ``k`` starting at token ``k * stride``
  (``stride`` 0 = ``budget // 2``), the last window ending at the text's last token, so every token is in at least
  one window; a text within the budget is one window. The model's logits over a text's windows are pooled by their
  mean (:func:`bigmodel_fast.inference.predict_logits_long`); fine-tuning trains on each window with its text's
  label. ``bmf_runner`` cuts the same windows.

Every window carries the classifier's specials as ``encode_for_classifier`` adds them (``[cls] ids [sep]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .classification import classifier_wrap, encode_for_classifier, fill_empty

LONG_TEXT_MODES = ("truncate", "head-tail", "chunks")
DEFAULT_LONG_TEXT = {"mode": "truncate", "stride": 0}  # what a meta.json / bundle.json without "long_text" means


@dataclass
class LongTextEncoding:
    """Classifier inputs of ``texts``: ``seqs`` (one id list per window, specials included), ``owner`` (window ->
    index of its text, non-decreasing; one window per text unless mode is ``chunks``) and ``report``
    (:func:`length_report`)."""

    seqs: list[list[int]]
    owner: list[int]
    report: dict = field(default_factory=dict)


def check_long_text(mode: str, stride: int, where: str = "long_text") -> None:
    """ValueError (one line) for an unknown mode or a negative stride."""
    if mode not in LONG_TEXT_MODES:
        raise ValueError(f"{where}: mode must be one of {', '.join(LONG_TEXT_MODES)}, got {mode!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
        raise ValueError(f"{where}: stride must be an int >= 0, got {stride!r}")


def long_text_settings(meta: dict | None, where: str = "meta.json") -> tuple[str, int]:
    """``(mode, stride)`` from a checkpoint's meta.json or a bundle.json (``"long_text": {"mode", "stride"}``);
    missing means truncate. Bad values are a one-line ValueError naming ``where``."""
    lt = (meta or {}).get("long_text") or DEFAULT_LONG_TEXT
    if not isinstance(lt, dict):
        raise ValueError(f"{where}: long_text must be an object {{'mode', 'stride'}}, got {lt!r}")
    mode, stride = lt.get("mode", "truncate"), lt.get("stride", 0)
    check_long_text(mode, stride, f"{where}: long_text")
    return mode, stride


def text_budget(tok, max_len: int) -> int:
    """Text tokens per classifier input: ``max_len`` minus the specials (ValueError when nothing is left)."""
    head, tail = classifier_wrap(tok)
    low = 1 + len(head) + len(tail)
    if max_len < low:
        raise ValueError(f"max_len must be >= {low}, got {max_len}")
    return max_len - len(head) - len(tail)


def effective_stride(budget: int, stride: int) -> int:
    """The chunk step: ``stride``, or ``budget // 2`` (at least 1) when 0; a step above ``budget`` would skip
    tokens and is a ValueError."""
    if stride > budget:
        raise ValueError(f"long_text stride {stride} exceeds the {budget} text tokens of a window (max_len minus "
                         f"specials); windows would skip tokens -- use a stride in [1, {budget}] or 0 for half")
    return stride if stride > 0 else max(1, budget // 2)


def window_starts(n: int, budget: int, step: int) -> list[int]:
    """Start offsets of the chunk windows of a text of ``n`` tokens: ``0, step, 2 step, ...`` while the window
    ends before the text does, then ``n - budget`` (the last window ends at the text's end); ``[0]`` when
    ``n <= budget``. For example ``n=10, budget=4, step=2`` -> ``[0, 2, 4, 6]``."""
    if n <= budget:
        return [0]
    return [*range(0, n - budget, step), n - budget]


def head_tail(ids: Sequence[int], budget: int) -> list[int]:
    """``ids`` when within ``budget``, else the first ``budget // 4`` ids followed by the last
    ``budget - budget // 4``."""
    if len(ids) <= budget:
        return list(ids)
    head = budget // 4
    return [*ids[:head], *ids[len(ids) - (budget - head):]]


def length_report(lengths: Sequence[int], budget: int) -> dict:
    """``{"texts", "over", "max_excess", "mean_excess"}``: texts with more than ``budget`` tokens, and the tokens
    beyond the budget (max, and mean over the texts that are over; 0 when none is)."""
    excess = [n - budget for n in lengths if n > budget]
    return {"texts": len(lengths), "over": len(excess), "max_excess": max(excess, default=0),
            "mean_excess": float(sum(excess) / len(excess)) if excess else 0.0}


def format_report(report: dict, max_len: int, mode: str, what: str = "training texts") -> str:
    """One line for the start of a run, e.g. "12 of 300 training texts exceed --max-len 128 by up to 401 tokens
    (mean 97.5); --long-text truncate cuts them"."""
    if not report.get("over"):
        return f"all {report.get('texts', 0)} {what} fit --max-len {max_len}"
    action = {"truncate": "cuts them", "head-tail": "keeps their head and tail",
              "chunks": "splits them into overlapping windows"}[mode]
    return (f"{report['over']} of {report['texts']} {what} exceed --max-len {max_len} by up to "
            f"{report['max_excess']} tokens (mean {report['mean_excess']:.1f}); --long-text {mode} {action}")


def encode_long(tok, texts: Sequence[str], max_len: int, mode: str = "truncate", stride: int = 0,
                count: bool = True) -> LongTextEncoding:
    """Classifier inputs of ``texts`` under ``mode`` (module docstring), each at most ``max_len`` ids.

    ``count=False`` skips the length report in truncate mode (then no text is tokenized whole; ``report`` is
    empty); head-tail and chunks tokenize every text whole anyway and always report."""
    check_long_text(mode, stride)
    budget = text_budget(tok, max_len)
    step = effective_stride(budget, stride) if mode == "chunks" else 0
    if mode == "truncate":
        seqs = encode_for_classifier(tok, texts, max_len)
        report = length_report([len(ids) for ids in tok.encode_batch(list(texts))], budget) if count else {}
        return LongTextEncoding(seqs, list(range(len(seqs))), report)
    head_ids, tail_ids = classifier_wrap(tok)
    seqs, owner, lengths = [], [], []
    for i, ids in enumerate(tok.encode_batch(list(texts))):
        lengths.append(len(ids))
        if mode == "head-tail":
            seqs.append([*head_ids, *head_tail(ids, budget), *tail_ids])
            owner.append(i)
            continue
        for start in window_starts(len(ids), budget, step):
            seqs.append([*head_ids, *ids[start : start + budget], *tail_ids])
            owner.append(i)
    return LongTextEncoding(fill_empty(tok, seqs), owner, length_report(lengths, budget))


def max_len_limit(model_cfg) -> int | None:
    """The longest input the model's learned positions allow (``max_position - position_offset``), or None for an
    architecture without positions (LSTM)."""
    if getattr(model_cfg, "arch", None) == "lstm":
        return None
    return int(model_cfg.max_position) - int(getattr(model_cfg, "position_offset", 0))


def check_max_len(max_len: int, model_cfg, where: str = "--max-len") -> None:
    """One-line ValueError when ``max_len`` exceeds the model's positions, naming the largest allowed value and
    ``--long-text chunks`` for longer documents."""
    limit = max_len_limit(model_cfg)
    if limit is not None and max_len > limit:
        raise ValueError(f"{where} {max_len} exceeds the model's {limit} positions (max_position "
                         f"{model_cfg.max_position}); use --max-len {limit} or less, and --long-text chunks (or "
                         f"head-tail) for longer documents")
