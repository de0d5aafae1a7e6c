"""Multi-label (chunks) and regression (head-tail) bundles: bundle.json records the inference settings, and
bmf_runner cuts the same windows as Python and gives the same records (fp32 tolerance)."""

from __future__ import annotations

import json

import pytest
import torch

from bigmodel_fast.data.long_text import encode_long
from bigmodel_fast.eval.predict import Predictor
from bigmodel_fast.export.bundle import export_bundle, read_bundle

from .task_models import TEXTS, make_classifier
from .test_deploy import expect_failure, run_json, runner  # noqa: F401 -- the session-built runner fixture

MULTI = ["art", "sport", "tech"]
# the long texts, and one of 3,000 tokens or so: dozens of windows of one text in one forward group
RUNNER_TEXTS = [*TEXTS, "word salad of many tokens " * 300]


@pytest.fixture(scope="module")
def bundles(tiny_pretrained, tmp_path_factory):
    root = tmp_path_factory.mktemp("task_bundles")
    multi = make_classifier(tiny_pretrained, root / "multi", "multi_label", MULTI,
                            long_text={"mode": "chunks", "stride": 5}, thresholds=[0.5, 0.4, 0.6])
    reg = make_classifier(tiny_pretrained, root / "reg", "regression", ["score"],
                          long_text={"mode": "head-tail", "stride": 0}, seed=1)
    return {"multi": (multi, export_bundle(multi, root / "multi_bundle")),
            "reg": (reg, export_bundle(reg, root / "reg_bundle"))}


def test_bundle_json_records_the_inference_settings(bundles):
    info = read_bundle(bundles["multi"][1])
    assert info["problem_type"] == "multi_label" and info["labels"] == MULTI
    assert info["long_text"] == {"mode": "chunks", "stride": 5} and info["thresholds"] == [0.5, 0.4, 0.6]
    assert "averaged" in info["input"]
    info = read_bundle(bundles["reg"][1])
    assert info["problem_type"] == "regression" and "thresholds" not in info
    assert info["long_text"] == {"mode": "head-tail", "stride": 0}
    # the Python bundle predictor reads them back: same records as the checkpoint
    for ckpt, bundle in bundles.values():
        a, b = Predictor(ckpt, device="cpu"), Predictor(bundle, device="cpu")
        assert b.spec == a.spec and b.long_text == a.long_text
        torch.testing.assert_close(b.predict_logits(TEXTS), a.predict_logits(TEXTS), atol=1e-5, rtol=0)


def test_runner_multilabel_chunks_match_python(runner, bundles):  # noqa: F811
    ckpt, bundle = bundles["multi"]
    data = "\n".join(RUNNER_TEXTS).encode() + b"\n"
    out = run_json(runner, bundle, data, "--print-ids", "--print-logits", "--batch-size", "4")
    p = Predictor(ckpt, device="cpu")
    enc = encode_long(p.tokenizer, RUNNER_TEXTS, 16, "chunks", 5)
    assert [o["windows"] for o in out] == [[s for s, w in zip(enc.seqs, enc.owner) if w == i]
                                           for i in range(len(RUNNER_TEXTS))]
    assert len(out[-1]["windows"]) > 100
    want = p.predict_logits(RUNNER_TEXTS)
    torch.testing.assert_close(torch.tensor([o["logits"] for o in out]), want, atol=1e-5, rtol=0)
    records = p.predict(RUNNER_TEXTS)
    assert [o["labels"] for o in out] == [r["labels"] for r in records]
    for o, r in zip(out, records):
        assert o["probabilities"] == pytest.approx(r["probabilities"], abs=2e-6)
    assert list(out[0]) == ["labels", "probabilities", "windows", "logits"]


def test_runner_regression_head_tail_matches_python(runner, bundles):  # noqa: F811
    ckpt, bundle = bundles["reg"]
    data = "\n".join(RUNNER_TEXTS).encode() + b"\n"
    out = run_json(runner, bundle, data, "--print-ids")
    p = Predictor(ckpt, device="cpu")
    assert [o["ids"] for o in out] == encode_long(p.tokenizer, RUNNER_TEXTS, 16, "head-tail").seqs
    assert [list(o) for o in out] == [["value", "ids"]] * len(RUNNER_TEXTS)
    want = [r["value"] for r in p.predict(RUNNER_TEXTS)]
    assert [o["value"] for o in out] == pytest.approx(want, abs=1e-5)
    (desc,) = run_json(runner, bundle, b"", "--check")
    assert desc["problem_type"] == "regression" and desc["long_text"] == {"mode": "head-tail", "stride": 0}


@pytest.mark.parametrize("edit,match", [({"long_text": {"mode": "split", "stride": 0}}, "long_text.mode 'split'"),
                                        ({"long_text": {"mode": "chunks", "stride": 15}}, "long_text.stride 15"),
                                        ({"thresholds": [0.5]}, "'thresholds' has 1 values for 3 labels"),
                                        ({"problem_type": "ranking"}, "problem_type 'ranking'")])
def test_runner_refuses_bad_inference_settings(runner, bundles, tmp_path, edit, match):  # noqa: F811
    import shutil

    b = tmp_path / "b"
    shutil.copytree(bundles["multi"][1], b)
    info = json.loads((b / "bundle.json").read_text())
    (b / "bundle.json").write_text(json.dumps({**info, **edit}))  # expect_failure re-seals the manifest
    expect_failure(runner, b, match=match)
