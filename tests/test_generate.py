"""`bmf generate`: the runner's sampling in Python (mt19937_64 + discrete_distribution), greedy = the export
reference loop, top-k never outside the top k, deterministic per seed, GPT-2 imports, one-line errors (exit 2)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from bigmodel_fast.cli import main
from bigmodel_fast.generate import GenerateConfig, generate_ids, load_language_model
from bigmodel_fast.sampling import MT19937_64, canonical, choose, discrete_draw

CPP_CHECK = r"""
#include <cstdio>
#include <random>
#include <vector>
int main() {
  std::mt19937_64 r(7);
  for (int i = 0; i < 3; ++i) std::printf("%llu\n", (unsigned long long)r());
  std::vector<double> w{1.0, 0.5, 0.25, 1e-3, 0.0, 2.5};
  std::discrete_distribution<long> d(w.begin(), w.end());
  std::mt19937_64 r2(3);
  for (int i = 0; i < 200; ++i) std::printf("%ld ", d(r2));
  std::printf("\n");
}
"""


def test_mt19937_64_is_the_standard_engine():
    r = MT19937_64()  # default seed 5489: the C++ standard's check value of the 10000th output
    for _ in range(9999):
        r.next()
    assert r.next() == 9981545732273789042
    assert all(0 <= canonical(MT19937_64(s)) < 1 for s in range(20))


def test_draws_equal_libstdcxx(tmp_path):
    """The same engine outputs and discrete_distribution draws as g++'s libstdc++ (what the runner links)."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the libstdc++ reference")
    src = tmp_path / "check.cpp"
    src.write_text(CPP_CHECK)
    exe = tmp_path / "check"
    subprocess.run([cxx, "-O2", "-o", str(exe), str(src)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    r = MT19937_64(7)
    assert [int(x) for x in lines[:3]] == [r.next() for _ in range(3)]
    weights, rng3 = [1.0, 0.5, 0.25, 1e-3, 0.0, 2.5], MT19937_64(3)
    assert [int(x) for x in lines[3].split()] == [discrete_draw(weights, rng3) for _ in range(200)]


def test_choose_greedy_first_maximum_and_top_k_support():
    z = np.array([0.5, 2.0, 2.0, -1.0, 1.9, 1.0], dtype=np.float32)
    rng = MT19937_64(0)
    assert choose(z, 1, 1.0, rng) == 1 and rng.index == MT19937_64.N  # greedy draws nothing
    for top_k, allowed in ((2, {1, 2}), (3, {1, 2, 4})):  # ties: the lower id is in the top k first
        got = {choose(z, top_k, 5.0, MT19937_64(s)) for s in range(200)}
        assert got == allowed
    assert {choose(z, 100, 50.0, MT19937_64(s)) for s in range(300)} == set(range(6))  # k > V: all of them
    cold = [choose(z, 6, 1e-3, MT19937_64(s)) for s in range(50)]  # a very low temperature: the two maxima only
    assert set(cold) <= {1, 2}


@pytest.fixture(scope="module")
def gpt_ckpt(tiny_data, tmp_path_factory):
    from tests.export.test_deploy import tiny_gpt_checkpoint

    return tiny_gpt_checkpoint(tiny_data, tmp_path_factory)


def run_cli(capsys, *argv) -> list[dict]:
    assert main(["generate", *argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_greedy_equals_the_export_reference_loop(gpt_ckpt, capsys):
    from bigmodel_fast.export.gpt import greedy_generate
    from bigmodel_fast.export.targets import load_export_target

    target = load_export_target(gpt_ckpt)
    lm = load_language_model(gpt_ckpt)
    assert lm.max_len == 64 and lm.kind == "checkpoint"
    prompts = ["The Python", "长" * 300]  # the second is longer than the 64-token context: the window slides
    rows = run_cli(capsys, "--model", str(gpt_ckpt), *sum((["--prompt", p] for p in prompts), []),
                   "--max-new-tokens", "10", "--print-ids", "--echo")
    for prompt, row in zip(prompts, rows, strict=True):
        ids = lm.tokenizer.encode(prompt)
        want, _ = greedy_generate(target.module, ids, 10, 64, eos_id=lm.eos_id)
        assert row["prompt"] == prompt and row["prompt_ids"] == ids
        assert row["generated_ids"] == want and row["text"] == lm.tokenizer.decode(want)
        assert len(want) == 10 or want[-1] == lm.eos_id


def test_sampling_is_deterministic_and_inside_the_top_k(gpt_ckpt, capsys, tmp_path):
    lm = load_language_model(gpt_ckpt)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n\nworld\n", encoding="utf-8")
    args = ["--model", str(gpt_ckpt), "--prompt-file", str(prompts), "--top-k", "3", "--temperature", "2.0",
            "--max-new-tokens", "6", "--print-ids"]
    a = run_cli(capsys, *args, "--seed", "5")
    assert a == run_cli(capsys, *args, "--seed", "5")
    assert a != run_cli(capsys, *args, "--seed", "6")
    assert a[1]["prompt_ids"] == [lm.tokenizer.bos_id]  # an empty line starts from <s>
    for row in a:  # each drawn id is one of the 3 most likely after its prefix
        ids = list(row["prompt_ids"])
        for nxt in row["generated_ids"]:
            with torch.no_grad():
                window = torch.tensor([ids[-lm.max_len:]])
                logits = lm.forward(window, torch.ones_like(window, dtype=torch.bool))[0, -1]
            assert nxt in logits.topk(3).indices.tolist()
            ids.append(nxt)
    rng = MT19937_64(5)  # one rng stream over all prompts, in order (the runner's)
    assert [generate_ids(lm, r["prompt_ids"], 6, 3, 2.0, rng) for r in a] == [r["generated_ids"] for r in a]


def _tiny_gpt2(tmp_path, tokenizer: str):
    pytest.importorskip("transformers")
    import transformers as T

    from bigmodel_fast.hf import import_hf
    from tests.hf.conftest import save_hf

    torch.manual_seed(0)
    hf = T.GPT2LMHeadModel(T.GPT2Config(vocab_size=60, n_embd=16, n_layer=2, n_head=2, n_positions=16)).eval()
    src = save_hf(hf, tmp_path / "hf")  # a WordPiece tokenizer.json: no bos, no eos
    if tokenizer == "bpe":
        from tokenizers import Tokenizer, models, pre_tokenizers

        vocab = {"<|endoftext|>": 0, **{chr(ord("a") + i): i + 1 for i in range(26)}}
        vocab.update({f"x{i}": i for i in range(len(vocab), 60)})
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.add_special_tokens(["<|endoftext|>"])
        tok.save(str(src / "tokenizer.json"))
    import_hf(src, tmp_path / "ckpt", use_hf_tokenizer=False)
    return hf, tmp_path / "ckpt"


def test_imported_gpt2_greedy_equals_transformers(tmp_path, capsys):
    hf, ckpt = _tiny_gpt2(tmp_path, "wordpiece")
    lm = load_language_model(ckpt)
    ids = lm.tokenizer.encode("abc def")
    rows = run_cli(capsys, "--model", str(ckpt), "--prompt", "abc def", "--max-new-tokens", "8")
    with torch.no_grad():  # transformers' greedy loop, full recompute, inside the 16-position context
        seq = torch.tensor([ids])
        for _ in range(8):
            seq = torch.cat([seq, hf(seq).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert rows[0]["generated_ids"] == seq[0, len(ids):].tolist()
    # an empty prompt on a tokenizer with no bos / eos: one-line error, exit 2
    assert main(["generate", "--model", str(ckpt), "--prompt", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prompt 1: the prompt is empty (no tokens)" in err and "no bos or eos" in err


def test_empty_prompt_on_gpt2_bpe_starts_from_endoftext(tmp_path, capsys):
    _, ckpt = _tiny_gpt2(tmp_path, "bpe")
    rows = run_cli(capsys, "--model", str(ckpt), "--prompt", "", "--max-new-tokens", "3", "--print-ids")
    assert rows[0]["prompt_ids"] == [0] and 1 <= len(rows[0]["generated_ids"]) <= 3


@pytest.mark.parametrize("argv, needle", [
    (["--top-k", "0"], "expected an integer >= 1"),
    (["--top-k", "two"], "expected an integer >= 1"),
    (["--max-new-tokens", "x"], "invalid int value"),
])
def test_bad_flags_are_refused_by_the_parser(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--model", "m", "--prompt", "p", *argv])
    assert e.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--max-new-tokens", "-1"], "max_new_tokens must be >= 0, got -1"),
    (["--max-new-tokens", "65537"], "--max-new-tokens must be in 0..65536, got 65537"),
    (["--top-k", "1048577"], "--top-k must be in 1..1048576"),
    (["--temperature", "0"], "--temperature must be a finite number > 0, got 0.0"),
    (["--temperature", "nan"], "--temperature must be a finite number > 0, got nan"),
    (["--seed", "-3"], "seed must be >= 0, got -3"),
    (["--seed", str(1 << 63)], "--seed must be in 0..9223372036854775807"),
    (["--prompt-file", "/nonexistent/prompts.txt"], "/nonexistent/prompts.txt: no such input file"),
])
def test_bad_values_are_one_line_errors(argv, needle, tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path), "--prompt", "p", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err


def test_wrong_models_are_one_line_errors(tiny_classifier, tmp_path, capsys):
    for model, needle in ((tiny_classifier, "does not generate text"), (tmp_path / "none", "no such model")):
        assert main(["generate", "--model", str(model), "--prompt", "p"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    assert main(["generate", "--model", str(tmp_path)]) == 2
    assert "no prompt given" in capsys.readouterr().err


def test_config_defaults_are_the_runners():
    cfg = GenerateConfig(model="m")
    assert (cfg.max_new_tokens, cfg.top_k, cfg.temperature, cfg.seed) == (32, 1, 1.0, 0)
