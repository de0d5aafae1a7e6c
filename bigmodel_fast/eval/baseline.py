"""Baselines that need no neural model, printed beside a model's scores (``bmf evaluate --baseline TRAIN_FILE``)
and used by the fine-tune checks (:mod:`bigmodel_fast.train.baselines`).

- Text classification / regression (:func:`text_baseline_report`): TF-IDF (:func:`tfidf_vectorizer`, the one
  featuriser of the project) + logistic regression (single-label), one-vs-rest logistic regression (multi-label)
  or ridge regression (regression), fitted on a training file and scored with the model's own report
  (:func:`~bigmodel_fast.eval.metrics.classification_report` and siblings) in the model's label order.
- Token classification (NER) (:func:`tagger_baseline_report`): every token gets the tag it most often has in the
  training file (:func:`most_frequent_tag_baseline`), scored with
  :func:`~bigmodel_fast.eval.entity_metrics.entity_scores`.

:func:`format_baseline_line` writes one line comparing a baseline report with the model's. scikit-learn is needed
for the TF-IDF baseline only (a one-line ValueError without it); the tagger baseline needs nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.classification import DEFAULT_LABEL_SEP, read_labelled
from ..data.token_tags import read_tagged, to_bio
from .entity_metrics import entity_scores
from .metrics import classification_report, multilabel_report, regression_report

TFIDF_MAX_FEATURES = 200_000  # in all: half word n-grams, half character n-grams (the most frequent of each)
SKLEARN_MISSING = "--baseline needs scikit-learn: pip install scikit-learn"
PROBLEM_TYPES = ("single_label", "multi_label", "regression")

# Scripts written without spaces between words: each ideograph / kana / hangul syllable is a word of its own.
_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005\u3007"  # 々 〇
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\uff66-\uff9f"  # halfwidth Katakana
    "\U00020000-\U0003134f"  # CJK Unified Ideographs Extensions B-G, compatibility supplement
)
# One CJK character, or a run of letters / digits (``\w`` without ``_`` and without the CJK characters).
WORD_TOKEN_PATTERN = rf"(?u)[{_CJK}]|[^\W_{_CJK}]+"


def sklearn_classes() -> dict | None:
    """The scikit-learn classes the baselines use (``{"TfidfVectorizer", "LogisticRegression", "Ridge",
    "OneVsRestClassifier", "FeatureUnion"}``), or None when scikit-learn is not installed."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import FeatureUnion
    except ImportError:
        return None
    return {"TfidfVectorizer": TfidfVectorizer, "LogisticRegression": LogisticRegression, "Ridge": Ridge,
            "OneVsRestClassifier": OneVsRestClassifier, "FeatureUnion": FeatureUnion}


def _require_sklearn() -> dict:
    sk = sklearn_classes()
    if sk is None:
        raise ValueError(SKLEARN_MISSING)
    return sk


def tfidf_vectorizer(max_features: int = TFIDF_MAX_FEATURES):
    """The TF-IDF featuriser of the project (unfitted): a ``FeatureUnion`` of

    - ``"word"``: word 1-2-grams, tokens by :data:`WORD_TOKEN_PATTERN`: every CJK ideograph, kana and hangul
      syllable is a word of its own and every run of letters / digits is a word (``_`` and punctuation split,
      one-letter words kept). Chinese and Japanese are written without spaces, so scikit-learn's default
      pattern (``\\b\\w\\w+\\b``) reads a whole clause as one "word" that no other text shares; here they get
      character uni- and bigrams, the usual word-free features for these scripts, while English gets its words
      and word pairs;
    - ``"char"``: ``char_wb`` 1-3-grams (characters inside word boundaries: spelling, morphology, typos),

    both lowercased, with sublinear tf (1 + log tf) and at most ``max_features // 2`` features each (the most
    frequent). ValueError when scikit-learn is not installed."""
    sk = _require_sklearn()
    tfidf = sk["TfidfVectorizer"]
    half = max(1, max_features // 2)
    return sk["FeatureUnion"]([
        ("word", tfidf(analyzer="word", token_pattern=WORD_TOKEN_PATTERN, ngram_range=(1, 2), sublinear_tf=True,
                       max_features=half)),
        ("char", tfidf(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, max_features=half)),
    ])


def _problem_type(problem_type: str) -> str:
    kind = problem_type.replace("-", "_")
    if kind not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {problem_type!r}")
    return kind


def _indicator(label_sets: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    y = np.zeros((len(label_sets), len(names)), dtype=np.int64)
    for r, labels in enumerate(label_sets):
        for name in labels:
            y[r, index[name]] = 1
    return y


def _check_known(what: str, labels: set, known: Sequence[str], where: str) -> None:
    unknown = sorted(set(labels) - set(known))
    if unknown:
        shown = ", ".join(map(repr, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        raise ValueError(f"{what} {shown} {'is' if len(unknown) == 1 else 'are'} not {where}")


def text_baseline_report(train_file: str | Path, eval_texts: Sequence[str], eval_labels: Sequence,
                         problem_type: str, label_names: Sequence[str], text_field: str = "text",
                         label_field: str = "label", label_sep: str = DEFAULT_LABEL_SEP) -> dict:
    """TF-IDF + a linear model fitted on ``train_file`` (read by
    :func:`~bigmodel_fast.data.classification.read_labelled` with ``text_field`` / ``label_field``), scored on
    ``eval_texts`` against ``eval_labels`` (as ``read_labelled`` gives them: a name, a list of names, a number).

    ``problem_type`` (``single_label`` | ``multi_label`` | ``regression``; hyphens accepted) picks the model and
    the report, the same one a model gets, in the model's label order ``label_names``:

    - single_label: :class:`LogisticRegression` -> :func:`classification_report` (with ROC AUC from its
      probabilities; a label the training file lacks gets probability 0);
    - multi_label: one-vs-rest logistic regression, one per label that varies in training (a label on every
      training row or on none is predicted constant) -> :func:`multilabel_report`;
    - regression: ridge regression (``alpha=1``) on the values -> :func:`regression_report` (``label_names``
      unused).

    Plus ``{"baseline": "tfidf_lr", "estimator": "logistic_regression" | "one_vs_rest_logistic_regression" |
    "ridge", "problem_type", "train_file", "train_examples"}``. ValueError (one line) without scikit-learn, for
    eval or training labels that are not among ``label_names``, eval labels that the training file never has (the
    baseline could not predict them), a single-label training file with one class, or a multi-label one where no
    label varies."""
    kind = _problem_type(problem_type)
    sk = _require_sklearn()
    eval_texts, eval_labels = list(eval_texts), list(eval_labels)
    if len(eval_texts) != len(eval_labels):
        raise ValueError(f"{len(eval_texts)} eval texts but {len(eval_labels)} eval labels")
    train = read_labelled(train_file, text_field=text_field, label_field=label_field, task=kind.replace("_", "-"),
                          label_sep=label_sep)
    names = list(label_names)
    vec = tfidf_vectorizer()
    x_train = vec.fit_transform(train.texts)
    x_eval = vec.transform(eval_texts)
    out = {"baseline": "tfidf_lr", "problem_type": kind, "train_file": str(train_file),
           "train_examples": len(train)}
    if kind == "single_label":
        classes = set(train.labels)
        _check_known("eval labels", set(eval_labels), names, f"among the model's labels {names}")
        _check_known("eval labels", set(eval_labels), sorted(classes), f"in the training file {train_file}")
        _check_known(f"labels of the training file {train_file}", classes, names, f"among the model's labels {names}")
        if len(classes) < 2:
            raise ValueError(f"{train_file}: every training row has the label {train.labels[0]!r}; the TF-IDF "
                             "baseline needs at least two classes")
        clf = sk["LogisticRegression"](max_iter=1000).fit(x_train, train.labels)
        index = {n: i for i, n in enumerate(names)}
        probs = np.zeros((len(eval_texts), len(names)))
        probs[:, [index[c] for c in clf.classes_]] = clf.predict_proba(x_eval)
        y_pred = np.array([index[c] for c in clf.predict(x_eval)], dtype=np.int64)
        y_true = np.array([index[n] for n in eval_labels], dtype=np.int64)
        report = classification_report(y_true, y_pred, names, probs=probs)
        out["estimator"] = "logistic_regression"
    elif kind == "multi_label":
        seen = {n for ls in train.labels for n in ls}
        wanted = {n for ls in eval_labels for n in ls}
        _check_known("eval labels", wanted, names, f"among the model's labels {names}")
        _check_known("eval labels", wanted, sorted(seen), f"in the training file {train_file}")
        _check_known(f"labels of the training file {train_file}", seen, names, f"among the model's labels {names}")
        y = _indicator(train.labels, names)
        cols = [j for j in range(len(names)) if 0 < y[:, j].sum() < len(y)]
        if not cols:
            raise ValueError(f"{train_file}: no label varies across the training rows (each is on every row or on "
                             "none); the TF-IDF baseline needs a label that some rows have and others lack")
        y_pred = np.tile((y.mean(axis=0) > 0.5).astype(np.int64), (len(eval_texts), 1))
        clf = sk["OneVsRestClassifier"](sk["LogisticRegression"](max_iter=1000)).fit(x_train, y[:, cols])
        y_pred[:, cols] = clf.predict(x_eval)
        report = multilabel_report(_indicator(eval_labels, names), y_pred, names)
        out["estimator"] = "one_vs_rest_logistic_regression"
    else:
        reg = sk["Ridge"](alpha=1.0).fit(x_train, np.asarray(train.labels, dtype=np.float64))
        report = regression_report(np.asarray(eval_labels, dtype=np.float64), reg.predict(x_eval))
        out["estimator"] = "ridge"
    report.update(out)
    return report


def most_frequent_tag_baseline(train_tokens: Sequence[Sequence[str]], train_tags: Sequence[Sequence[str]],
                               eval_tokens: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tags of ``eval_tokens`` (sentences of tokens) by the most-frequent-tag rule, learned from
    ``train_tokens`` / ``train_tags`` (BIO, as :func:`~bigmodel_fast.data.token_tags.read_tagged` gives them).

    - A token (exact string, case kept) gets the tag it has most often in training; on a tie the tag first in
      sorted string order (``B-LOC`` < ``B-PER`` < ``I-LOC`` < ``O``), so the rule is deterministic and does not
      depend on the order of the training data.
    - A token never seen in training gets ``O``.
    - The tags so chosen are then read as BIO and **repaired** (:func:`~bigmodel_fast.data.token_tags.to_bio`):
      an ``I-X`` that continues no ``X`` entity (a sentence start, after ``O`` or after another type; e.g. "York"
      alone, mostly ``I-LOC`` after "New") becomes ``B-X``. That is the entity seqeval's default (conlleval) mode
      reads in the raw tags anyway, so default-mode scores are unchanged by the repair, while the output is
      well-formed BIO: strict IOB2 scoring does not silently drop those entities, and the tags compare with
      ``read_tagged``'s (repaired) gold tags token by token."""
    if len(train_tokens) != len(train_tags):
        raise ValueError(f"{len(train_tokens)} training sentences of tokens but {len(train_tags)} of tags")
    counts: dict[str, Counter] = {}
    for i, (tokens, tags) in enumerate(zip(train_tokens, train_tags)):
        if len(tokens) != len(tags):
            raise ValueError(f"training sentence {i}: {len(tokens)} tokens but {len(tags)} tags")
        for token, tag in zip(tokens, tags):
            counts.setdefault(token, Counter())[tag] += 1
    best = {token: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for token, c in counts.items()}
    return [to_bio([best.get(token, "O") for token in sentence], "bio")[0] for sentence in eval_tokens]


def tagger_baseline_report(train_file: str | Path, eval_tokens: Sequence[Sequence[str]],
                           eval_tags: Sequence[Sequence[str]], mode: str = "default") -> dict:
    """The most-frequent-tag baseline (:func:`most_frequent_tag_baseline`) fitted on ``train_file`` (read by
    :func:`~bigmodel_fast.data.token_tags.read_tagged`, tags in BIO) and scored on ``eval_tokens`` against
    ``eval_tags`` (BIO, as ``read_tagged`` gives them) by :func:`~bigmodel_fast.eval.entity_metrics.entity_scores`
    in ``mode``: ``{"per_type", "micro", "macro", "weighted", "token_accuracy", "mode"}`` plus
    ``{"baseline": "most_frequent_tag", "train_file", "train_sentences", "train_tokens", "vocabulary" (distinct
    training tokens), "unseen_tokens" (eval tokens not in it, tagged O)}``."""
    train = read_tagged(train_file)
    pred = most_frequent_tag_baseline(train.tokens, train.tags, eval_tokens)
    report = entity_scores(eval_tags, pred, mode)
    vocab = {t for sent in train.tokens for t in sent}
    report.update({"baseline": "most_frequent_tag", "train_file": str(train_file), "train_sentences": len(train),
                   "train_tokens": train.stats.tokens, "vocabulary": len(vocab),
                   "unseen_tokens": sum(t not in vocab for sent in eval_tokens for t in sent)})
    return report


def _headline(report: dict) -> list[tuple[str, float]]:
    """The two numbers that sum up a report, by its kind (entity, regression, multi-label, single-label)."""
    if "per_type" in report:
        return [("entity micro-F1", report["micro"]["f1"]), ("token accuracy", report["token_accuracy"])]
    if "mse" in report:
        return [("MSE", report["mse"]), ("Spearman", report["spearman"])]
    if "micro_f1" in report:
        return [("micro-F1", report["micro_f1"]), ("macro-F1", report["macro_f1"])]
    if "accuracy" in report and "macro" in report:
        return [("accuracy", report["accuracy"]), ("macro-F1", report["macro"]["f1"])]
    raise ValueError(f"not a classification, multi-label, regression or entity report (keys: {sorted(report)})")


def _fmt(name: str, value: float) -> str:
    return f"{value:.4g}" if name == "MSE" else f"{value:.3f}"


def format_baseline_line(model_report: dict, baseline_report: dict) -> str:
    """One line: the baseline's two headline numbers and the model's, e.g. ``baseline tfidf_lr: accuracy 0.868
    macro-F1 0.866 (model: 0.840 / 0.838)``; multi-label: micro- / macro-F1; regression: MSE / Spearman; entity
    reports: entity micro-F1 / token accuracy. ValueError when the two reports are not of one kind."""
    base, model = _headline(baseline_report), _headline(model_report)
    if [n for n, _ in base] != [n for n, _ in model]:
        raise ValueError(f"the model's report ({model[0][0]}, {model[1][0]}) and the baseline's ({base[0][0]}, "
                         f"{base[1][0]}) are not of one kind")
    numbers = " ".join(f"{n} {_fmt(n, v)}" for n, v in base)
    return (f"baseline {baseline_report.get('baseline', '?')}: {numbers} "
            f"(model: {' / '.join(_fmt(n, v) for n, v in model)})")
