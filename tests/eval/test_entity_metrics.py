"""eval.entity_metrics against seqeval (the oracle): per-type / micro / macro / weighted P, R, F1 and support in
the default (conlleval) and strict IOB2 modes, token accuracy, and bad input."""

from __future__ import annotations

import math
import random
import warnings

import pytest

from bigmodel_fast.eval.entity_metrics import entities, entity_scores


def _seqeval():
    return pytest.importorskip("seqeval.metrics", reason="seqeval (test extra) is the oracle")


def _oracle(y_true, y_pred, mode):
    kw = {}
    if mode == "strict":
        from seqeval.scheme import IOB2

        kw = {"mode": "strict", "scheme": IOB2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on 0/0 (it scores 0, as entity_scores does)
        report = _seqeval().classification_report(y_true, y_pred, output_dict=True, zero_division=0, **kw)
    return report


def _compare(ours, report):
    names = {"micro": "micro avg", "macro": "macro avg", "weighted": "weighted avg"}
    types = sorted(k for k in report if not k.endswith(" avg"))
    assert sorted(ours["per_type"]) == types
    for t in types:
        row = ours["per_type"][t]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (
            report[t]["precision"], report[t]["recall"], report[t]["f1-score"], report[t]["support"]), t
    for ours_key, key in names.items():
        row = ours[ours_key]
        if not types and ours_key == "macro":  # no entity anywhere: seqeval averages nothing (NaN), we report 0
            assert all(math.isnan(report[key][m]) for m in ("precision", "recall", "f1-score"))
            assert (row["precision"], row["recall"], row["f1"]) == (0.0, 0.0, 0.0)
            continue
        assert (row["precision"], row["recall"], row["f1"]) == (
            report[key]["precision"], report[key]["recall"], report[key]["f1-score"]), ours_key


def _sentences(rng, prefixes, n):
    return [["O" if rng.random() < 0.35 else f"{rng.choice(prefixes)}-{rng.choice('ABC')}"
             for _ in range(rng.randint(1, 9))] for _ in range(n)]


@pytest.mark.parametrize("mode,prefixes", [("default", "BIES"), ("default", "BI"), ("strict", "BI")])
def test_scores_equal_seqeval_on_random_predictions(mode, prefixes):
    rng = random.Random(3)
    for trial in range(300):
        y_true = _sentences(rng, prefixes, rng.randint(1, 6))
        # predictions: the truth with some tags changed, so there are hits and misses
        y_pred = [[t if rng.random() < 0.7 else rng.choice(["O", f"{rng.choice(prefixes)}-{rng.choice('ABC')}"])
                   for t in sent] for sent in y_true]
        ours = entity_scores(y_true, y_pred, mode)
        _compare(ours, _oracle(y_true, y_pred, mode))
        assert ours["token_accuracy"] == _seqeval().accuracy_score(y_true, y_pred)


def test_hand_example_and_the_two_modes_differ_on_a_stray_i():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    y_pred = [["B-PER", "I-PER", "O", "I-LOC"], ["B-ORG", "I-ORG", "O"]]
    default = entity_scores(y_true, y_pred)
    assert default["per_type"]["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert default["per_type"]["ORG"]["f1"] == 0.0  # a shorter span is a miss
    assert default["micro"]["precision"] == pytest.approx(2 / 3) and default["micro"]["recall"] == pytest.approx(2 / 3)
    strict = entity_scores(y_true, y_pred, "strict")
    assert strict["per_type"]["LOC"]["recall"] == 0.0 and strict["per_type"]["LOC"]["precision"] == 0.0
    assert strict["micro"]["precision"] == 0.5  # PER right; the stray I-LOC is no entity in strict IOB2
    assert entities([["I-PER", "I-PER", "B-PER"]]) == [(0, "PER", 0, 1), (0, "PER", 2, 2)]
    assert entities([["I-PER", "I-PER", "B-PER"]], "strict") == [(0, "PER", 2, 2)]
    assert default["token_accuracy"] == pytest.approx(5 / 7)


def test_no_entities_and_bad_input():
    empty = entity_scores([["O", "O"]], [["O", "O"]])
    assert empty["per_type"] == {} and empty["micro"]["f1"] == 0.0 and empty["token_accuracy"] == 1.0
    with pytest.raises(ValueError, match="2 sentences but y_pred 1"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: 2 true tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="strict IOB2"):
        entity_scores([["S-PER"]], [["O"]], "strict")
    with pytest.raises(ValueError, match="mode must be one of"):
        entities([["O"]], "lenient")
    with pytest.raises(ValueError, match="neither 'O' nor"):
        entity_scores([["PER"]], [["O"]])
