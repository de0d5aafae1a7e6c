"""`bmf evaluate`: strict-JSON reports, one-line errors for bad paths and fields, non-finite models refused."""

from __future__ import annotations

import json

from bigmodel_fast.cli import main

from .eval_helpers import one_line_error


def strict_load(path):
    def refuse(name):
        raise AssertionError(f"bare {name} in {path}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_undefined_metrics_are_null_in_the_report(tiny_classifier, tmp_path, capsys):
    data = tmp_path / "only_pos.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "pos"}) + "\n" for t in ("good", "great", "fine")),
                    encoding="utf-8")
    out = tmp_path / "reports" / "report.json"  # its folder is created
    assert main(["evaluate", "--model", str(tiny_classifier), "--data", str(data), "--out", str(out),
                 "--device", "cpu"]) == 0
    report = strict_load(out)
    assert report["roc_auc"] == {"neg": None, "pos": None}  # one class only: ROC AUC is undefined
    assert report["per_class"]["neg"]["support"] == 0 and report["examples"] == 3
    assert "accuracy" in capsys.readouterr().out


def test_a_non_finite_model_is_refused(nan_classifier, sentiment_small, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(nan_classifier), "--data", str(sentiment_small["test"]),
                 "--out", str(out), "--device", "cpu"]) == 2
    one_line_error(capsys, str(nan_classifier), "not finite", "120 examples")
    assert not out.exists()


def test_bad_paths_and_fields_are_one_line_errors(tiny_classifier, tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": "a", "label": "pos"}) + "\n", encoding="utf-8")
    base = ["evaluate", "--device", "cpu"]
    assert main(base + ["--model", str(tiny_classifier), "--data", str(tmp_path / "nope.jsonl")]) == 2
    one_line_error(capsys, "nope.jsonl")
    assert main(base + ["--model", str(tmp_path / "no_model"), "--data", str(good)]) == 2
    one_line_error(capsys, "no_model")
    assert main(base + ["--model", str(tiny_classifier), "--data", str(good), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, str(tmp_path), "is a directory")

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "a", "label": "pos"}) + "\n" + json.dumps({"body": "b", "label": "neg"})
                    + "\n", encoding="utf-8")
    assert main(base + ["--model", str(tiny_classifier), "--data", str(rows)]) == 2
    one_line_error(capsys, f"{rows}:2", "'text'")
    assert main(base + ["--model", str(tiny_classifier), "--data", str(rows), "--label-field", "y"]) == 2
    one_line_error(capsys, f"{rows}:1", "'y'")


def test_data_is_checked_before_the_model_is_loaded(tmp_path, capsys):
    """A mistyped --data fails at once, even when the model would fail too (or take long to load)."""
    assert main(["evaluate", "--model", str(tmp_path / "no_model"), "--data", str(tmp_path / "nope.csv")]) == 2
    one_line_error(capsys, "nope.csv")
