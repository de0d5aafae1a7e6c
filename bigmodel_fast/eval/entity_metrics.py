"""Entity-level scores of token classification (NER), with the semantics of ``seqeval``.

An entity is (sentence, type, first token, last token). Two readings of a tag sequence (``mode``):

- ``"default"``: the conlleval reading (``seqeval``'s default mode): ``B-``/``S-`` start an entity, an ``I-``/``E-``
  continues one of its type and otherwise starts one, ``E-``/``S-`` end it; tags are read through
  :func:`bigmodel_fast.data.token_tags.to_bio`, whose BIO form spells exactly those entities (tested against
  ``seqeval.metrics.sequence_labeling.get_entities``), and entities are its maximal ``B-X I-X*`` runs.
- ``"strict"``: IOB2 as ``seqeval`` with ``mode="strict", scheme=IOB2``: an entity is a ``B-X`` and the ``I-X``
  after it; an ``I-X`` that does not continue one belongs to no entity. ``E-``/``S-`` tags raise ValueError.

Scores (:func:`entity_scores`) per type: precision = correct / predicted, recall = correct / true (0 when the
denominator is 0), F1 = 2 P R / (P + R) (0 when P + R = 0), support = true entities; ``micro`` pools the counts,
``macro`` is the plain mean over the types, ``weighted`` the mean weighted by support (all 0 without true
entities). Types are the union of true and predicted ones; with no entity on either side every score is 0
(seqeval gives NaN for the macro average there, which JSON cannot carry). Same arithmetic, in the same order, as
seqeval's, so the floats are equal, not just close. ``token_accuracy`` is the share of tokens whose tag is right.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from bigmodel_fast.data.token_tags import split_tag, to_bio

MODES = ("default", "strict")
Entity = tuple[int, str, int, int]  # (sentence, type, first token, last token)


def _runs(bio: Sequence[str], sent: int) -> list[Entity]:
    """Maximal ``B-X I-X*`` runs; an ``I-`` that continues no run belongs to none (strict IOB2; the BIO that
    :func:`to_bio` returns for the default mode has no such ``I-``)."""
    out: list[Entity] = []
    start, typ = -1, ""
    for i, tag in enumerate([*bio, "O"]):
        prefix, t = split_tag(tag)
        if start >= 0 and not (prefix == "I" and t == typ):
            out.append((sent, typ, start, i - 1))
            start = -1
        if prefix == "B":
            start, typ = i, t
    return out


def entities(sentences: Sequence[Sequence[str]], mode: str = "default") -> list[Entity]:
    """Every entity of ``sentences`` (lists of tags) in ``mode`` (module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    out: list[Entity] = []
    for sent, tags in enumerate(sentences):
        if mode == "default":
            tags = to_bio(tags, "bioes")[0]
        else:
            for tag in tags:
                prefix, _ = split_tag(tag)
                if prefix not in ("O", "B", "I"):
                    raise ValueError(f"strict IOB2: tag {tag!r} has prefix {prefix!r}; allowed: B, I, O")
        out += _runs(tags, sent)
    return out


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    safe = den.astype(np.float64).copy()
    zero = safe == 0.0
    safe[zero] = 1.0
    out = num / safe
    out[zero] = 0.0
    return out


def _prf(tp: np.ndarray, pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = _divide(tp, pred)
    recall = _divide(tp, true)
    denom = precision + recall
    denom[denom == 0.0] = 1.0
    f1 = 2 * precision * recall / denom
    return precision, recall, f1


def _check(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} sentences but y_pred {len(y_pred)}")
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} true tags but {len(p)} predicted")


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default") -> dict:
    """``{"per_type": {type: {"precision", "recall", "f1", "support"}}, "micro": {...}, "macro": {...},
    "weighted": {...}, "token_accuracy", "mode"}`` for sentences of true and predicted tags (same lengths;
    ValueError otherwise). Floats are Python floats; supports are ints."""
    _check(y_true, y_pred)
    true = set(entities(y_true, mode))
    pred = set(entities(y_pred, mode))
    types = sorted({e[1] for e in true} | {e[1] for e in pred})
    hits, n_p, n_t = (Counter(e[1] for e in group) for group in (true & pred, pred, true))  # per type
    tp, n_pred, n_true = (np.array([c[t] for t in types], np.int64) for c in (hits, n_p, n_t))
    p, r, f = _prf(tp, n_pred, n_true)
    out: dict = {"mode": mode, "per_type": {t: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                                 "support": int(n_true[i])} for i, t in enumerate(types)}}
    mp, mr, mf = _prf(np.array([tp.sum()]), np.array([n_pred.sum()]), np.array([n_true.sum()]))
    out["micro"] = {"precision": float(mp[0]), "recall": float(mr[0]), "f1": float(mf[0]),
                    "support": int(n_true.sum())}
    if types:
        out["macro"] = {"precision": float(np.average(p)), "recall": float(np.average(r)),
                        "f1": float(np.average(f)), "support": int(n_true.sum())}
    else:
        out["macro"] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    if n_true.sum() == 0:
        out["weighted"] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    else:
        out["weighted"] = {"precision": float(np.average(p, weights=n_true)),
                           "recall": float(np.average(r, weights=n_true)),
                           "f1": float(np.average(f, weights=n_true)), "support": int(n_true.sum())}
    flat_true = [t for s in y_true for t in s]
    flat_pred = [t for s in y_pred for t in s]
    out["token_accuracy"] = (sum(a == b for a, b in zip(flat_true, flat_pred)) / len(flat_true)) if flat_true else 0.0
    return out
