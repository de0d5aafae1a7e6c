"""eval.baseline: the CJK-aware TF-IDF featuriser, the TF-IDF + linear-model report against a hand-built
scikit-learn pipeline scored by sklearn.metrics, its errors, and the most-frequent-tag NER baseline against tags
derived by hand and seqeval's scores."""

import builtins
import json
import random
import warnings

import numpy as np
import pytest

from bigmodel_fast.eval.baseline import (
    SKLEARN_MISSING,
    TFIDF_MAX_FEATURES,
    WORD_TOKEN_PATTERN,
    format_baseline_line,
    most_frequent_tag_baseline,
    tagger_baseline_report,
    text_baseline_report,
    tfidf_vectorizer,
)

sklearn = pytest.importorskip("sklearn", reason="scikit-learn fits the TF-IDF baseline and is its oracle")
from sklearn import metrics as skm  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.multiclass import OneVsRestClassifier  # noqa: E402
from sklearn.pipeline import FeatureUnion  # noqa: E402

KEYWORDS = {"sport": ["goal", "match", "team"], "food": ["bread", "soup", "cheese"],
            "money": ["bank", "price", "loan"]}
FILLER = ["the", "a", "today", "very", "news", "people", "said", "big", "new", "city"]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _text(rng: random.Random, keywords: list[str], noise: float = 0.35) -> str:
    """Filler words with keywords of the given labels; with probability ``noise`` a keyword of another label too,
    so the baseline is good but not perfect."""
    words = rng.choices(FILLER, k=rng.randint(3, 7)) + [rng.choice(keywords)]
    if rng.random() < noise:
        words.append(rng.choice([w for ws in KEYWORDS.values() for w in ws]))
    rng.shuffle(words)
    return " ".join(words)


def _single_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    labels = list(KEYWORDS)
    return [{"text": _text(rng, KEYWORDS[lab]), "label": lab} for lab in (rng.choice(labels) for _ in range(n))]


def _reference_union() -> FeatureUnion:
    """The featuriser as the docstring of tfidf_vectorizer spells it, built here by hand."""
    half = TFIDF_MAX_FEATURES // 2
    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", token_pattern=WORD_TOKEN_PATTERN, ngram_range=(1, 2),
                                 sublinear_tf=True, max_features=half)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, max_features=half)),
    ])


# --- the featuriser ------------------------------------------------------------------------------------------------

def test_word_analyzer_splits_cjk_into_characters_and_english_into_words():
    union = tfidf_vectorizer().fit(["我喜欢北京", "東京タワー 한국", "The quick brown_fox jumps, 2024!"])
    parts = dict(union.transformer_list)
    assert set(parts) == {"word", "char"}
    word = parts["word"]
    vocab = set(word.vocabulary_)
    # Chinese without spaces: single characters and character bigrams, never the whole sentence
    assert {"我", "喜", "欢", "北", "京", "我 喜", "喜 欢", "欢 北", "北 京"} <= vocab
    assert "我喜欢北京" not in vocab
    assert {"東", "タ", "ワ", "ー", "한", "국", "東 京", "タ ワ", "한 국"} <= vocab  # kanji, kana, hangul
    # English: words (underscore and punctuation split, digits kept) and word bigrams; no character pieces
    assert {"the", "quick", "brown", "fox", "jumps", "2024", "the quick", "brown fox", "fox jumps"} <= vocab
    assert "brown_fox" not in vocab and "qu" not in vocab and "jumps," not in vocab
    assert word.build_analyzer()("Hello 世界!") == ["hello", "世", "界", "hello 世", "世 界"]
    char = parts["char"]
    assert char.analyzer == "char_wb" and char.ngram_range == (1, 3) and char.sublinear_tf
    assert word.sublinear_tf and word.ngram_range == (1, 2)
    assert word.max_features + char.max_features == TFIDF_MAX_FEATURES
    assert " qu" in set(char.vocabulary_)  # char_wb n-grams are padded at word boundaries


def test_fine_tune_check_uses_the_same_featuriser():
    import torch

    from bigmodel_fast.train.baselines import tfidf_baseline

    class _Obj:  # the part of a single-label objective that tfidf_baseline reads
        problem_type = "single_label"

    train, valid = _single_rows(120, seed=1), _single_rows(40, seed=2)
    names = list(KEYWORDS)
    y = torch.tensor([names.index(r["label"]) for r in train])
    pred = tfidf_baseline(_Obj(), [r["text"] for r in train], y, [r["text"] for r in valid])
    union = _reference_union()
    x = union.fit_transform([r["text"] for r in train])
    ref = LogisticRegression(max_iter=1000).fit(x, y.numpy()).predict(union.transform([r["text"] for r in valid]))
    assert pred.tolist() == ref.tolist()


# --- text_baseline_report ------------------------------------------------------------------------------------------

def test_single_label_report_equals_a_hand_built_pipeline(tmp_path):
    train, valid = _single_rows(150, seed=3), _single_rows(60, seed=4)
    path = _write_jsonl(tmp_path / "train.jsonl", train)
    names = ["money", "sport", "food"]  # the model's order, not sorted
    texts, labels = [r["text"] for r in valid], [r["label"] for r in valid]
    rep = text_baseline_report(path, texts, labels, "single_label", names)

    union = _reference_union()
    clf = LogisticRegression(max_iter=1000).fit(union.fit_transform([r["text"] for r in train]),
                                                [r["label"] for r in train])
    pred = clf.predict(union.transform(texts))
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred), abs=1e-12)
    assert rep["macro"]["f1"] == pytest.approx(skm.f1_score(labels, pred, average="macro", labels=names), abs=1e-12)
    assert rep["confusion_matrix"] == skm.confusion_matrix(labels, pred, labels=names).tolist()
    assert 0.6 < rep["accuracy"] < 1.0  # learned something, and the noise keeps it from being perfect
    assert rep["labels"] == names and rep["examples"] == 60
    probs = clf.predict_proba(union.transform(texts))
    for name in names:
        auc = skm.roc_auc_score(np.array(labels) == name, probs[:, list(clf.classes_).index(name)])
        assert rep["roc_auc"][name] == pytest.approx(auc, abs=1e-12)
    assert rep["baseline"] == "tfidf_lr" and rep["estimator"] == "logistic_regression"
    assert rep["train_file"] == str(path) and rep["train_examples"] == 150 and rep["problem_type"] == "single_label"


def test_multi_label_report_equals_one_vs_rest(tmp_path):
    rng = random.Random(5)

    def rows(n):
        out = []
        for _ in range(n):
            labs = sorted({lab for lab in KEYWORDS if rng.random() < 0.4})
            out.append({"text": _text(rng, [w for lab in labs for w in KEYWORDS[lab]] or FILLER), "label": labs})
        return out

    train, valid = rows(160), rows(60)
    path = _write_jsonl(tmp_path / "train.jsonl", train)
    names = ["sport", "money", "food", "unused"]  # "unused": on no training row, so predicted 0 (constant)
    rep = text_baseline_report(path, [r["text"] for r in valid], [r["label"] for r in valid], "multi-label", names)

    def indicator(rs):
        return np.array([[int(n in r["label"]) for n in names[:3]] for r in rs])

    union = _reference_union()
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(
        union.fit_transform([r["text"] for r in train]), indicator(train))
    pred = np.hstack([clf.predict(union.transform([r["text"] for r in valid])), np.zeros((60, 1), int)])
    truth = np.hstack([indicator(valid), np.zeros((60, 1), int)])
    kw = {"zero_division": 0}
    assert rep["micro_f1"] == pytest.approx(skm.f1_score(truth, pred, average="micro", **kw), abs=1e-12)
    assert rep["macro_f1"] == pytest.approx(skm.f1_score(truth, pred, average="macro", **kw), abs=1e-12)
    assert rep["subset_accuracy"] == pytest.approx(skm.accuracy_score(truth, pred), abs=1e-12)
    assert rep["per_label"]["unused"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert 0.5 < rep["micro_f1"] < 1.0
    assert rep["estimator"] == "one_vs_rest_logistic_regression" and rep["problem_type"] == "multi_label"


def test_regression_report_equals_ridge(tmp_path):
    from scipy.stats import pearsonr, spearmanr

    rng = random.Random(6)
    weight = {"goal": 3.0, "bread": -2.0, "bank": 1.0}

    def rows(n):
        out = []
        for _ in range(n):
            words = rng.choices(FILLER + list(weight), k=6)
            out.append({"text": " ".join(words), "label": sum(weight.get(w, 0.0) for w in words) + rng.gauss(0, 1)})
        return out

    train, valid = rows(150), rows(50)
    path = _write_jsonl(tmp_path / "train.jsonl", train)
    texts, values = [r["text"] for r in valid], [r["label"] for r in valid]
    rep = text_baseline_report(path, texts, values, "regression", [])
    union = _reference_union()
    reg = Ridge(alpha=1.0).fit(union.fit_transform([r["text"] for r in train]), [r["label"] for r in train])
    pred = reg.predict(union.transform(texts))
    assert rep["mse"] == pytest.approx(skm.mean_squared_error(values, pred), rel=1e-9)
    assert rep["mae"] == pytest.approx(skm.mean_absolute_error(values, pred), rel=1e-9)
    assert rep["pearson"] == pytest.approx(pearsonr(values, pred)[0], abs=1e-9)
    assert rep["spearman"] == pytest.approx(spearmanr(values, pred)[0], abs=1e-9)
    assert rep["spearman"] > 0.5 and rep["estimator"] == "ridge" and rep["examples"] == 50


def test_errors_unknown_labels_one_class_and_bad_problem_type(tmp_path):
    path = _write_jsonl(tmp_path / "train.jsonl", _single_rows(30, seed=7))
    names = [*KEYWORDS, "weather"]
    with pytest.raises(ValueError, match=r"eval labels 'weather' is not in the training file"):
        text_baseline_report(path, ["rain today", "goal"], ["weather", "sport"], "single_label", names)
    with pytest.raises(ValueError, match=r"eval labels 'travel' is not among the model's labels"):
        text_baseline_report(path, ["a trip"], ["travel"], "single_label", names)
    with pytest.raises(ValueError, match=r"labels of the training file .* 'food', 'money' are not among the model"):
        text_baseline_report(path, ["goal"], ["sport"], "single_label", ["sport"])
    one = _write_jsonl(tmp_path / "one.jsonl", [{"text": f"goal {i}", "label": "sport"} for i in range(5)])
    with pytest.raises(ValueError, match=r"every training row has the label 'sport'.*at least two classes"):
        text_baseline_report(one, ["goal"], ["sport"], "single_label", names)
    every = _write_jsonl(tmp_path / "every.jsonl", [{"text": f"goal {i}", "label": ["sport"]} for i in range(5)])
    with pytest.raises(ValueError, match=r"no label varies"):
        text_baseline_report(every, ["goal"], [["sport"]], "multi_label", names)
    ml = _write_jsonl(tmp_path / "ml.jsonl", [{"text": "goal", "label": ["sport"]}, {"text": "soup", "label": []}])
    with pytest.raises(ValueError, match=r"eval labels 'food' is not in the training file"):
        text_baseline_report(ml, ["soup"], [["food"]], "multi_label", names)
    with pytest.raises(ValueError, match=r"problem_type must be one of"):
        text_baseline_report(path, ["goal"], ["sport"], "ranking", names)
    with pytest.raises(ValueError, match=r"2 eval texts but 1 eval labels"):
        text_baseline_report(path, ["goal", "soup"], ["sport"], "single_label", names)


def test_without_scikit_learn_one_line_error(tmp_path, monkeypatch):
    import torch

    from bigmodel_fast.train.baselines import run_checks, tfidf_baseline

    path = _write_jsonl(tmp_path / "train.jsonl", _single_rows(30, seed=8))
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ValueError) as err:
        text_baseline_report(path, ["goal"], ["sport"], "single_label", list(KEYWORDS))
    assert str(err.value) == SKLEARN_MISSING == "--baseline needs scikit-learn: pip install scikit-learn"
    with pytest.raises(ValueError, match="needs scikit-learn"):
        tfidf_vectorizer()

    class _Obj:
        problem_type, label_names, num_labels = "single_label", ["a", "b"], 2

        def predict(self, logits):
            return logits.argmax(-1).numpy()

        def never_predicted(self, logits):
            return []

    y = torch.tensor([0, 1, 0, 1])
    assert tfidf_baseline(_Obj(), ["a", "b", "a", "b"], y, ["a"]) is None  # the fine-tune check skips it
    checks = run_checks(_Obj(), torch.eye(2)[y], y, ["a", "b", "a", "b"], y, ["a", "b", "a", "b"], "valid")
    assert checks["tfidf_lr"] is None and "scikit-learn is not installed" in checks["tfidf_note"]


# --- the most-frequent-tag tagger ----------------------------------------------------------------------------------

TRAIN_CONLL = """\
-DOCSTART- O

John B-PER
lives O
in O
New B-LOC
York I-LOC

New O
ideas O
in O
York B-LOC

Paris B-LOC
is O
nice O

Paris B-PER
Hilton I-PER
is O
rich O

Paris B-PER
laughs O
"""
# counts: New B-LOC 1 / O 1 (tie -> B-LOC, sorted first); York I-LOC 1 / B-LOC 1 (tie -> B-LOC);
# Paris B-PER 2 / B-LOC 1 (majority -> B-PER, though B-LOC sorts first); Hilton I-PER; in, is O
EVAL_TOKENS = [["John", "Hilton", "lives", "in", "Paris"],
               ["Hilton", "is", "in", "New", "York"],
               ["Alice", "likes", "Tokyo"]]
EVAL_TAGS = [["B-PER", "I-PER", "O", "O", "B-LOC"],
             ["B-ORG", "O", "O", "B-LOC", "I-LOC"],
             ["B-PER", "O", "B-LOC"]]
EXPECTED = [["B-PER", "I-PER", "O", "O", "B-PER"],
            ["B-PER", "O", "O", "B-LOC", "B-LOC"],  # Hilton: I-PER at the start, repaired to B-PER
            ["O", "O", "O"]]  # unseen tokens


def _train_file(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(TRAIN_CONLL, encoding="utf-8")
    return path


def test_most_frequent_tag_by_hand(tmp_path):
    from bigmodel_fast.data.token_tags import read_tagged

    train = read_tagged(_train_file(tmp_path))
    assert most_frequent_tag_baseline(train.tokens, train.tags, EVAL_TOKENS) == EXPECTED
    order = list(range(len(train)))
    random.Random(0).shuffle(order)  # the tie rule does not depend on the order of the training sentences
    shuffled = most_frequent_tag_baseline([train.tokens[i] for i in order], [train.tags[i] for i in order],
                                          EVAL_TOKENS)
    assert shuffled == EXPECTED
    # case is kept: "john" is another token, unseen
    assert most_frequent_tag_baseline(train.tokens, train.tags, [["john", "York"], []]) == [["O", "B-LOC"], []]
    # the repair keeps a continuation: "New" (B-LOC) then a token that is mostly I-LOC stays one entity
    assert most_frequent_tag_baseline([["a", "b"]], [["B-LOC", "I-LOC"]], [["a", "b"], ["b", "b"]]) == [
        ["B-LOC", "I-LOC"], ["B-LOC", "I-LOC"]]
    with pytest.raises(ValueError, match="training sentence 0: 2 tokens but 1 tags"):
        most_frequent_tag_baseline([["a", "b"]], [["O"]], [["a"]])


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_tagger_report_equals_seqeval(tmp_path, mode):
    seqeval_metrics = pytest.importorskip("seqeval.metrics", reason="seqeval (test extra) is the oracle")
    path = _train_file(tmp_path)
    rep = tagger_baseline_report(path, EVAL_TOKENS, EVAL_TAGS, mode=mode)
    kw = {}
    if mode == "strict":
        from seqeval.scheme import IOB2

        kw = {"mode": "strict", "scheme": IOB2}

    def oracle(pred):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns on 0/0 (it scores 0, as entity_scores does)
            return seqeval_metrics.classification_report(EVAL_TAGS, pred, output_dict=True, zero_division=0, **kw)

    ref = oracle(EXPECTED)
    assert set(rep["per_type"]) == {"LOC", "ORG", "PER"}
    for typ in ("LOC", "ORG", "PER"):
        row, want = rep["per_type"][typ], ref[typ]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (
            want["precision"], want["recall"], want["f1-score"], want["support"]), typ
    for ours, theirs in (("micro", "micro avg"), ("macro", "macro avg"), ("weighted", "weighted avg")):
        row, want = rep[ours], ref[theirs]
        assert (row["precision"], row["recall"], row["f1"]) == (
            want["precision"], want["recall"], want["f1-score"]), ours
    if mode == "default":  # seqeval's default reading of the unrepaired tags (Hilton: I-PER) gives the same scores
        raw = [EXPECTED[0], ["I-PER", *EXPECTED[1][1:]], EXPECTED[2]]
        assert oracle(raw) == ref
    # by hand: true PER John Hilton, ORG Hilton, LOC Paris, LOC New York, PER Alice, LOC Tokyo;
    # predicted PER John Hilton (right), PER Paris, PER Hilton, LOC New, LOC York
    assert rep["micro"]["precision"] == pytest.approx(1 / 5) and rep["micro"]["recall"] == pytest.approx(1 / 6)
    assert rep["token_accuracy"] == pytest.approx(8 / 13) == seqeval_metrics.accuracy_score(EVAL_TAGS, EXPECTED)
    assert rep["baseline"] == "most_frequent_tag" and rep["train_file"] == str(path) and rep["mode"] == mode
    assert (rep["train_sentences"], rep["train_tokens"], rep["vocabulary"], rep["unseen_tokens"]) == (5, 18, 12, 3)


# --- format_baseline_line ------------------------------------------------------------------------------------------

def test_format_baseline_line_for_every_kind():
    single = {"accuracy": 0.84, "macro": {"f1": 0.838}, "per_class": {}}
    base = {"accuracy": 0.8678, "macro": {"f1": 0.8661}, "baseline": "tfidf_lr"}
    assert format_baseline_line(single, base) == (
        "baseline tfidf_lr: accuracy 0.868 macro-F1 0.866 (model: 0.840 / 0.838)")
    multi = {"micro_f1": 0.71, "macro_f1": 0.65}
    assert format_baseline_line(multi, {**multi, "micro_f1": 0.5, "baseline": "tfidf_lr"}) == (
        "baseline tfidf_lr: micro-F1 0.500 macro-F1 0.650 (model: 0.710 / 0.650)")
    reg = {"mse": 0.012345, "mae": 0.1, "pearson": 0.9, "spearman": 0.875}
    assert format_baseline_line(reg, {**reg, "mse": 2.5, "spearman": 0.5, "baseline": "tfidf_lr"}) == (
        "baseline tfidf_lr: MSE 2.5 Spearman 0.500 (model: 0.01235 / 0.875)")
    ent = {"per_type": {}, "micro": {"f1": 0.9}, "token_accuracy": 0.97}
    assert format_baseline_line(ent, {**ent, "micro": {"f1": 0.612}, "baseline": "most_frequent_tag"}) == (
        "baseline most_frequent_tag: entity micro-F1 0.612 token accuracy 0.970 (model: 0.900 / 0.970)")
    with pytest.raises(ValueError, match="not of one kind"):
        format_baseline_line(single, {**multi, "baseline": "tfidf_lr"})
    with pytest.raises(ValueError, match="not a classification"):
        format_baseline_line({"loss": 1.0}, base)


def test_format_baseline_line_on_real_reports(tmp_path):
    from bigmodel_fast.eval.metrics import classification_report

    train, valid = _single_rows(80, seed=9), _single_rows(30, seed=10)
    path = _write_jsonl(tmp_path / "train.jsonl", train)
    names = list(KEYWORDS)
    rep = text_baseline_report(path, [r["text"] for r in valid], [r["label"] for r in valid], "single_label", names)
    model = classification_report([names.index(r["label"]) for r in valid], [0] * 30, names)
    line = format_baseline_line(model, rep)
    assert line == (f"baseline tfidf_lr: accuracy {rep['accuracy']:.3f} macro-F1 {rep['macro']['f1']:.3f} "
                    f"(model: {model['accuracy']:.3f} / {model['macro']['f1']:.3f})")
    tag_rep = tagger_baseline_report(_train_file(tmp_path), EVAL_TOKENS, EVAL_TAGS)
    assert format_baseline_line(tag_rep, tag_rep).startswith("baseline most_frequent_tag: entity micro-F1 0.182 ")
