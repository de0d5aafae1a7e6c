import json
import subprocess
import sys
from pathlib import Path

import pytest

from bigmodel_fast.cli import main


def test_quickstart_ner_smoke_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--task", "ner", "--scale", "smoke", "--out", str(out), "--device", "cpu",
                 "--no-progress", "--no-compare-random"]) == 0
    summary = json.loads((out / "quickstart.json").read_text(encoding="utf-8"))
    assert [c.split()[1] for c in summary["commands"]] == ["prepare", "pretrain", "finetune", "evaluate", "export",
                                                           "predict"]
    assert "--task token" in summary["commands"][2]
    report = json.loads((out / "eval_test.json").read_text(encoding="utf-8"))
    test = summary["test"]
    assert test["entity_micro_f1"] == report["entity"]["micro"]["f1"] and test["sentences"] == report["sentences"]
    assert test["baseline"]["name"] == "most_frequent_tag" and "random_init" not in test
    assert set(report["entity"]["per_type"]) <= {"PER", "LOC", "ORG"} and report["sentences"] > 100
    bundle = json.loads((out / "bundle" / "bundle.json").read_text(encoding="utf-8"))
    assert bundle["task"] == "token" and bundle["labels"][0] == "O"
    assert "test entity micro-F1" in capsys.readouterr().out
    assert main(["predict", "--model", str(out / "bundle"), "--text", "江泽民在北京。", "--device", "cpu"]) == 0
    assert "entities" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_quickstart_smoke_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--scale", "smoke", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    summary = json.loads((out / "quickstart.json").read_text(encoding="utf-8"))
    assert [c.split()[1] for c in summary["commands"]] == ["prepare", "pretrain", "finetune", "evaluate", "finetune",
                                                           "evaluate", "export", "predict"]
    assert (out / "commands.sh").read_text(encoding="utf-8").count("\nbmf ") == 8
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0 and summary["test"]["examples"] > 0
    # the baseline fitted on the same training file, and the same fine-tuning from a random backbone
    test = summary["test"]
    assert test["baseline"]["name"] == "tfidf_lr" and 0.0 <= test["baseline"]["macro_f1"] <= 1.0
    random_report = json.loads((out / "eval_test_random.json").read_text(encoding="utf-8"))
    assert test["random_init"]["macro_f1"] == random_report["macro"]["f1"]
    assert "--baseline" in summary["commands"][3] and "random_init" in summary["commands"][4]
    assert summary["documents"]["train"] > 0 and summary["tokens"]["train"] > 0
    for key in ("pretrain_checkpoint", "classifier_checkpoint", "bundle"):
        assert Path(summary["artefacts"][key]).is_dir(), key
    report = json.loads((out / "eval_test.json").read_text(encoding="utf-8"))
    assert report["accuracy"] == summary["test"]["accuracy"]
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "bundle" in printed and "random backbone" in printed

    # predict from the bundle through the CLI
    assert main(["predict", "--model", str(out / "bundle"), "--text", "很好", "--device", "cpu"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["label"] in ("neg", "pos") and abs(sum(line["probabilities"].values()) - 1) < 1e-4

    # --input from the checkpoint and from the bundle: the same texts, labels and (nearly) the same probabilities
    texts = tmp_path / "texts.txt"
    texts.write_bytes("很好\r\nbad movie\n\n不好".encode())
    results = {}
    for key in ("classifier_checkpoint", "bundle"):
        assert main(["predict", "--model", summary["artefacts"][key], "--input", str(texts), "--device", "cpu",
                     "--echo"]) == 0
        results[key] = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    ck, bd = results["classifier_checkpoint"], results["bundle"]
    assert [r["text"] for r in ck] == [r["text"] for r in bd] == ["很好", "bad movie", "", "不好"]
    for a, b in zip(ck, bd):
        assert a["label"] == b["label"]
        assert all(abs(a["probabilities"][k] - b["probabilities"][k]) < 1e-4 for k in a["probabilities"])


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["pretrain", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no such data directory" in err and "Traceback" not in err
    assert main(["predict", "--model", str(tmp_path)]) == 2


def test_export_and_batch_size_checks_exit_2(capsys):
    assert main(["export"]) == 2
    assert "give --checkpoint CKPT --out DIR" in capsys.readouterr().err
    assert main(["export", "--checkpoint", "x"]) == 2
    assert "--out DIR is required with --checkpoint" in capsys.readouterr().err
    for argv in (["evaluate", "--model", "m", "--data", "d", "--batch-size", "0"],
                 ["predict", "--model", "m", "--text", "t", "--batch-size", "-1"],
                 ["predict", "--model", "m", "--text", "t", "--max-line-bytes", "0"]):
        with pytest.raises(SystemExit) as e:  # refused by the parser, before any model is loaded
            main(argv)
        assert e.value.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_predict_help_documents_the_line_cap():
    r = subprocess.run([sys.executable, "-m", "bigmodel_fast.cli", "predict", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0
    assert "--max-line-bytes" in r.stdout and "1048576" in r.stdout and "stdin" in r.stdout


def test_module_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "bigmodel_fast.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("prepare", "pretrain", "finetune", "evaluate", "export", "predict", "quickstart"):
        assert cmd in r.stdout


def test_every_subcommand_help_shows_every_default():
    """For each subcommand of the table, each option that has a default says it in --help: "(default: X)" from
    the config field (config_cli), or the field's own help naming the default."""
    import argparse

    from bigmodel_fast.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"prepare", "pretrain", "finetune", "evaluate", "export", "predict", "generate", "quickstart",
            "import-hf", "export-hf"} <= set(sub.choices)
    checked = 0
    for name, p in sub.choices.items():
        shown = "".join(p.format_help().split())  # no whitespace: argparse wraps lines, also at hyphens
        for a in p._actions:
            if isinstance(a, argparse._HelpAction) or a.required or a.default is argparse.SUPPRESS:
                continue
            if not a.option_strings and a.default is None:  # a positional without a default
                continue
            text = " ".join((a.help or "").split()).replace("%%", "%")
            assert "default" in text.lower(), f"bmf {name} {a.option_strings}: no default in {a.help!r}"
            assert "".join(text.split()) in shown, f"bmf {name} {a.option_strings}: help not shown"
            checked += 1
    assert checked > 60
    predict = " ".join(sub.choices["predict"].format_help().split())
    assert "--format {auto,lines,jsonl,csv}" in predict and "(default: auto)" in predict
    assert "(default: text)" in predict
    assert "--echo write the text into each output record too (default: off)" in predict
