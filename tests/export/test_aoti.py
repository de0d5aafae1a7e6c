"""torch.export + AOTInductor bundles (``--format aoti``, ``model.pt2``): dynamic batch and length, parity with eager
PyTorch, and the C++ runner loading them with AOTIModelPackageLoader.

AOTInductor compiles C++ at export time. Measured on a 2-core CPU (torch 2.13): the tiny classifier compiles in
~25-30 s with a cold Inductor cache, the tiny GPT LM in ~15 s, so these tests run by default (the whole module takes
about a minute). Set BMF_SKIP_AOTI=1 to skip them on a machine without a working C++ toolchain for Inductor.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from bigmodel_fast.data.tokenizer import Tokenizer
from bigmodel_fast.export.bundle import export_bundle, load_bundle_model, read_bundle
from bigmodel_fast.export.runner import build_runner, missing_prerequisites, run_runner
from bigmodel_fast.export.targets import load_export_target
from bigmodel_fast.fsio import write_manifest

pytestmark = pytest.mark.skipif(os.environ.get("BMF_SKIP_AOTI") == "1", reason="BMF_SKIP_AOTI=1")


@pytest.fixture(scope="module")
def aoti_bundle(tiny_classifier, tmp_path_factory):
    return export_bundle(tiny_classifier, tmp_path_factory.mktemp("aoti") / "bundle", format="aoti")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """Same build directory as test_deploy.py's fixture, so when both run the second build is a no-op."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    return build_runner(tmp_path_factory.getbasetemp() / "bmf_runner_build")


def test_aoti_bundle_dynamic_shapes_match_eager(aoti_bundle, tiny_classifier):
    info = read_bundle(aoti_bundle)
    assert info["format"] == "aoti" and info["model"] == "model.pt2" and not (aoti_bundle / "model.pt").exists()
    model, info = load_bundle_model(aoti_bundle)
    assert info["device"] == "cpu"
    assert load_bundle_model(aoti_bundle, device="cuda")[1]["device"] == "cpu"  # CPU package: inputs go to CPU
    eager = load_export_target(tiny_classifier).module
    g = torch.Generator().manual_seed(0)
    for b, s in ((1, 1), (1, 2), (5, 7), (64, info["max_len"]), (3, eager.cfg.max_position)):
        ids = torch.randint(7, eager.cfg.vocab_size, (b, s), generator=g)
        mask = torch.ones(b, s, dtype=torch.bool)
        mask[-1, max(1, s // 2):] = False
        ids[~mask] = 0
        with torch.no_grad():
            torch.testing.assert_close(model(ids, mask), eager(ids, mask), atol=1e-5, rtol=0)


def test_runner_on_aoti_bundle_matches_python(runner, aoti_bundle, tiny_classifier):
    from .test_deploy import check_classifier_parity

    check_classifier_parity(runner, aoti_bundle, tiny_classifier)


def test_runner_rejects_corrupt_pt2(runner, aoti_bundle, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(aoti_bundle, bad)
    (bad / "model.pt2").write_bytes(b"PK\x03\x04 not really a zip")
    r = run_runner(runner, bad, b"text\n")
    assert r.returncode == 2 and b"model.pt2: 21 bytes, manifest.json says" in r.stderr  # caught before dlopen
    write_manifest(bad)  # behind a matching manifest, the loader's own check
    r = run_runner(runner, bad, b"text\n")
    assert r.returncode == 2
    assert b"cannot load the AOTInductor package" in r.stderr
    info = json.loads((bad / "bundle.json").read_text())
    (bad / "bundle.json").write_text(json.dumps({**info, "format": "tensorrt"}))
    write_manifest(bad)
    r = run_runner(runner, bad, b"text\n")
    assert r.returncode == 2 and b"format 'tensorrt' is not supported" in r.stderr


def test_gpt_lm_aoti_runner_generation(runner, tiny_data, tmp_path_factory, tmp_path):
    from bigmodel_fast.export.gpt import greedy_generate

    from .test_deploy import run_json, tiny_gpt_checkpoint

    ckpt = tiny_gpt_checkpoint(tiny_data, tmp_path_factory)
    bundle = export_bundle(ckpt, tmp_path / "lm", format="aoti")
    target = load_export_target(ckpt)
    tok = Tokenizer(bundle / "tokenizer.model")
    prompts = ["你好，世界", "", "长" * 300]
    out = run_json(runner, bundle, "\n".join(prompts).encode() + b"\n", "--max-new-tokens", "5", "--print-logits")
    for prompt, o in zip(prompts, out, strict=True):
        ids, first = greedy_generate(target.module, tok.encode(prompt), 5, target.max_len)
        assert o["generated_ids"] == ids
        torch.testing.assert_close(torch.tensor(o["logits"]), first, atol=1e-5, rtol=0)


def test_predictor_on_aoti_bundle_matches_checkpoint(aoti_bundle, tiny_classifier):
    from bigmodel_fast.eval.predict import Predictor

    texts = ["这本书写得非常好，强烈推荐！", "", "emoji 😀 混合 text", "差" * 500]
    bundle = Predictor(aoti_bundle, device="cpu")
    assert bundle.kind == "bundle:aoti"
    torch.testing.assert_close(bundle.predict_proba(texts),
                               Predictor(tiny_classifier, device="cpu").predict_proba(texts), atol=1e-5, rtol=0)
