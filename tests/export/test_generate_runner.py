"""`bmf generate` against `bmf_runner` on the same GPT: greedy ids identical (checkpoint and bundle), and sampled ids
identical too for the same --top-k / --temperature / --seed (the runner's mt19937_64 + discrete_distribution)."""

from __future__ import annotations

import json

from bigmodel_fast.cli import main
from bigmodel_fast.export.bundle import export_bundle

from .test_deploy import run_json, runner, tiny_gpt_checkpoint  # noqa: F401 -- the session-built runner fixture

PROMPTS = ["你好，世界", "", "The Python", "长" * 300]  # empty: starts from <s>; the last exceeds the 64-id context


def _python(capsys, model, *args) -> list[dict]:
    argv = ["generate", "--model", str(model), *sum((["--prompt", p] for p in PROMPTS), []), "--print-ids", *args]
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_generate_equals_the_runner(runner, tiny_data, tmp_path_factory, tmp_path, capsys):  # noqa: F811
    ckpt = tiny_gpt_checkpoint(tiny_data, tmp_path_factory)
    bundle = export_bundle(ckpt, tmp_path / "lm")
    capsys.readouterr()  # what pretraining printed
    data = "\n".join(PROMPTS).encode() + b"\n"
    greedy = run_json(runner, bundle, data, "--max-new-tokens", "70", "--print-ids")
    assert _python(capsys, ckpt, "--max-new-tokens", "70") == greedy  # eager checkpoint == runner, token for token
    assert _python(capsys, bundle, "--max-new-tokens", "70") == greedy
    for k, t, seed in (("5", "1.0", "3"), ("40", "0.7", "11"), ("1000000", "3.5", "0")):
        args = ("--max-new-tokens", "20", "--top-k", k, "--temperature", t, "--seed", seed)
        sampled = run_json(runner, bundle, data, *args, "--print-ids")
        assert _python(capsys, bundle, *args) == sampled, (k, t, seed)
