"""bmf evaluate / predict / export on token classifiers: seqeval-equal entity reports on real predictions, tag
confusion, baseline, figures, entities with character offsets from checkpoints and bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigmodel_fast.data.token_tags import read_tagged
from bigmodel_fast.eval.evaluate import evaluate, format_evaluation
from bigmodel_fast.eval.token_predict import TokenPredictor, spans_to_entities

SEQEVAL_KEY = {"f1": "f1-score"}
seqeval = pytest.importorskip("seqeval", reason="seqeval is the oracle of the entity scores (test extra)")


@pytest.fixture(scope="module")
def report(tiny_token_classifier, ner_files):
    return evaluate(tiny_token_classifier, ner_files["test"], device="cpu")


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_entity_report_equals_seqeval_on_real_predictions(tiny_token_classifier, ner_files, report, mode):
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold = read_tagged(ner_files["test"])
    pred = TokenPredictor(tiny_token_classifier, device="cpu").tag(gold.tokens)
    kw = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    oracle = classification_report(gold.tags, pred, output_dict=True, zero_division=0, **kw)
    ours = report["entity" if mode == "default" else "strict"]
    assert len(ours["per_type"]) == 3
    for typ, row in ours["per_type"].items():
        for key in ("precision", "recall", "f1"):
            assert row[key] == oracle[typ][SEQEVAL_KEY.get(key, key)]
        assert row["support"] == oracle[typ]["support"]
    for avg in ("micro", "macro", "weighted"):
        for key in ("precision", "recall", "f1"):
            assert ours[avg][key] == oracle[f"{avg} avg"][SEQEVAL_KEY.get(key, key)]
    flat_t = [t for s in gold.tags for t in s]
    flat_p = [t for s in pred for t in s]
    assert report["token_accuracy"] == np.mean([a == b for a, b in zip(flat_t, flat_p)])
    assert 0.3 < ours["micro"]["f1"] < 1.0  # a real, imperfect model: the comparison is not between zeros


def test_tag_confusion_counts_every_token(report):
    m = np.array(report["tag_confusion"]["matrix"])
    assert m.shape == (7, 7) and m.sum() == report["tokens"]
    assert np.trace(m) / m.sum() == pytest.approx(report["token_accuracy"])
    text = format_evaluation(report)
    assert "entity micro-F1" in text and "PER" in text and "strict IOB2" in text


def test_baseline_and_plots(tiny_token_classifier, ner_files, tmp_path):
    from bigmodel_fast.eval.baseline import tagger_baseline_report

    rep = evaluate(tiny_token_classifier, ner_files["test"], device="cpu", baseline=ner_files["train"],
                   plots=tmp_path / "fig", out=tmp_path / "r.json")
    gold = read_tagged(ner_files["test"])
    expected = tagger_baseline_report(ner_files["train"], gold.tokens, gold.tags)
    assert rep["baseline"]["micro"] == expected["micro"] and rep["baseline"]["baseline"] == "most_frequent_tag"
    assert "baseline most_frequent_tag" in format_evaluation(rep)
    assert set(rep["plots"]) == {"entity_types", "tag_confusion"}
    for path in rep["plots"].values():
        assert (tmp_path / "fig" / path.split("/")[-1]).stat().st_size > 5000
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["entity"]["micro"]["f1"] == rep["entity"]["micro"]["f1"]


def test_entities_carry_character_offsets_and_bundles_agree(tiny_token_classifier, tmp_path):
    from bigmodel_fast.export.bundle import export_bundle

    texts = ["Alice visited Paris, and 江泽民 met 北京 with Acme Corp.", "", "   ", "the the the",
             "New York " * 30, "李鹏在上海会见新华社记者"]
    ckpt_records = TokenPredictor(tiny_token_classifier, device="cpu").predict(texts)
    assert any(r["entities"] for r in ckpt_records)
    for text, rec in zip(texts, ckpt_records):
        for e in rec["entities"]:
            assert text[e["start"]:e["end"]] == e["text"] and e["type"] in {"PER", "LOC", "ORG"}
    bundle = export_bundle(tiny_token_classifier, tmp_path / "bundle")
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["task"] == "token" and info["token"]["overlap"] == 4 and info["token"]["boundary_id"] >= 0
    assert TokenPredictor(bundle, device="cpu").predict(texts) == ckpt_records


def test_spans_to_entities_reads_tags_as_seqeval_default_mode():
    text = "a b c d"
    spans = [(0, 1), (2, 3), (4, 5), (6, 7)]
    got = spans_to_entities(text, spans, ["I-PER", "I-PER", "O", "B-LOC"])
    assert got == [{"type": "PER", "start": 0, "end": 3, "text": "a b"},
                   {"type": "LOC", "start": 6, "end": 7, "text": "d"}]


def test_cli_predict_and_evaluate(tiny_token_classifier, ner_files, tmp_path, capsys):
    from bigmodel_fast.cli import main

    assert main(["predict", "--model", str(tiny_token_classifier), "--text", "Alice met Bob Smith in Paris",
                 "--echo"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    rec = json.loads(line)
    assert rec["text"] == "Alice met Bob Smith in Paris" and isinstance(rec["entities"], list)
    assert main(["evaluate", "--model", str(tiny_token_classifier), "--data", str(ner_files["test"])]) == 0
    assert "entity micro-F1" in capsys.readouterr().out
    bad = tmp_path / "bad.conll"
    bad.write_text("onlyonecolumn\n", encoding="utf-8")
    assert main(["evaluate", "--model", str(tiny_token_classifier), "--data", str(bad)]) == 2
    assert "no usable tagged sentence" in capsys.readouterr().err
