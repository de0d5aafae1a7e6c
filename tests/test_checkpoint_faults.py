"""Checkpoint faults end to end: no pickle, one-line errors for damaged files in every command, manifest
verification, legacy checkpoints (unit tests of the module: tests/test_checkpoint.py)."""

import json
import shutil

import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast import fsio
from bigmodel_fast.cli import main

from .hostile_pickle import Evil


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _one_line_error(capsys, *names):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.startswith("bmf ")]
    assert len(lines) == 1 and "error:" in lines[0], err
    for name in names:
        assert name in lines[0], (name, err)
    return lines[0]


@pytest.fixture(scope="module")
def cli_run(tiny_data, tmp_path_factory):
    """A run directory written by `bmf pretrain` (3 steps, resumable)."""
    run = tmp_path_factory.mktemp("cli_run") / "run"
    assert main(["pretrain", "--data", str(tiny_data), "--out", str(run), "--max-steps", "3", "--seq-len", "32",
                 "--batch-size", "4", "--eval-every", "100", "--device", "cpu", "--no-progress"]) == 0
    return run


def _resume_args(tiny_data, run, *extra):
    return ["pretrain", "--data", str(tiny_data), "--out", str(run), "--max-steps", "4", "--seq-len", "32",
            "--batch-size", "4", "--eval-every", "100", "--device", "cpu", "--no-progress", "--resume", *extra]


def test_no_pickle_in_a_new_checkpoint(cli_run):
    names = {p.name for p in (cli_run / "checkpoint").iterdir()}
    assert {ckpt.TRAINER, ckpt.TRAINER_TENSORS, fsio.MANIFEST} <= names and ckpt.LEGACY_TRAINER not in names
    assert fsio.verify_manifest(cli_run / "checkpoint", required=True)
    state = ckpt.load_trainer_state(cli_run / "checkpoint")
    assert state["step"] == 3 and isinstance(state["rng"]["torch"], torch.Tensor)


def test_hostile_trainer_state_is_refused_not_run(tiny_data, cli_run, tmp_path, capsys):
    run = _copy(cli_run, tmp_path / "run")
    c = run / "checkpoint"
    for name in (ckpt.TRAINER, ckpt.TRAINER_TENSORS, fsio.MANIFEST):  # as a checkpoint of the old format
        (c / name).unlink()
    marker = tmp_path / "pwned"
    torch.save({"step": 3, "optimizer": Evil(marker)}, c / ckpt.LEGACY_TRAINER)
    assert main(_resume_args(tiny_data, run)) == 2
    _one_line_error(capsys, str(c / ckpt.LEGACY_TRAINER), "refused")
    assert not marker.exists()
    with pytest.raises(ckpt.CheckpointError, match="refused"):
        ckpt.load_trainer_state(c)
    assert not marker.exists()


def test_legacy_trainer_state_pt_still_resumes(tiny_data, cli_run, tmp_path):
    """A plain trainer_state.pt (tensors, numbers, NumPy RNG) as the old format wrote it loads with weights_only."""
    run = _copy(cli_run, tmp_path / "run")
    c = run / "checkpoint"
    state = ckpt.load_trainer_state(c)
    for name in (ckpt.TRAINER, ckpt.TRAINER_TENSORS, fsio.MANIFEST):
        (c / name).unlink()
    torch.save(state, c / ckpt.LEGACY_TRAINER)
    again = ckpt.load_trainer_state(c)
    assert again["step"] == 3 and torch.equal(again["rng"]["torch"], state["rng"]["torch"])
    assert main(_resume_args(tiny_data, run)) == 0


def _damage(f, how):
    data = f.read_bytes()
    if how == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif how == "header":
        f.write_bytes(b"\xff" * 16 + data[16:])
    else:
        f.write_bytes(b"this is not a safetensors file at all" * 10)


@pytest.mark.parametrize("manifest", [True, False], ids=["with_manifest", "legacy_no_manifest"])
@pytest.mark.parametrize("how", ["truncated", "header", "garbage"])
def test_damaged_weights_are_a_checkpoint_error(tiny_classifier, tmp_path, how, manifest):
    c = _copy(tiny_classifier, tmp_path / "ckpt")
    if not manifest:
        (c / fsio.MANIFEST).unlink()
    _damage(c / ckpt.WEIGHTS, how)
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors"):
        ckpt.load_model(c, "classifier")


@pytest.mark.parametrize("how", ["truncated", "header", "garbage"])
def test_damaged_weights_one_line_in_every_command(tiny_data, tiny_classifier, tiny_pretrained, cli_run, tmp_path,
                                                   sentiment_small, capsys, how):
    cls = _copy(tiny_classifier, tmp_path / "cls")
    pre = _copy(tiny_pretrained, tmp_path / "pre")
    run = _copy(cli_run, tmp_path / "run")
    for c in (cls, pre, run / "checkpoint"):
        (c / fsio.MANIFEST).unlink()  # the safetensors check itself, not only the manifest
        _damage(c / ckpt.WEIGHTS, how)
    data = str(sentiment_small["valid"])
    commands = [
        ["predict", "--model", str(cls), "--text", "hello", "--device", "cpu"],
        ["evaluate", "--model", str(cls), "--data", data, "--device", "cpu"],
        ["export", "--checkpoint", str(cls), "--out", str(tmp_path / "bundle")],
        ["finetune", "--checkpoint", str(pre), "--train", data, "--out", str(tmp_path / "ft"), "--device", "cpu",
         "--no-progress"],
        _resume_args(tiny_data, run),
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        _one_line_error(capsys, "model.safetensors")


def _resign(c):
    (c / fsio.MANIFEST).unlink()
    fsio.write_manifest(c)


def test_config_that_does_not_fit_the_weights(tiny_classifier, tmp_path):
    c = _copy(tiny_classifier, tmp_path / "ckpt")
    cfg = json.loads((c / ckpt.CONFIG).read_text())
    cfg["vocab_size"] += 7
    (c / ckpt.CONFIG).write_text(json.dumps(cfg))
    _resign(c)
    with pytest.raises(ckpt.CheckpointError, match=r"model\.safetensors: tensor '.*' has shape \[\d+, 32\] but the "
                                                   r"model in config.json needs \[\d+, 32\]"):
        ckpt.load_model(c, "classifier")


def test_manifest_catches_a_flipped_weight_byte(tiny_classifier, tmp_path):
    c = _copy(tiny_classifier, tmp_path / "ckpt")
    f = c / ckpt.WEIGHTS
    data = bytearray(f.read_bytes())
    data[-5] ^= 0x40  # inside the tensor data: safetensors itself cannot notice
    f.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors: SHA-256 does not match"):
        ckpt.load_model(c, "classifier")


def test_checkpoint_without_manifest_still_loads(tiny_classifier, tmp_path):
    c = _copy(tiny_classifier, tmp_path / "ckpt")
    (c / fsio.MANIFEST).unlink()
    model, cfg, meta = ckpt.load_model(c, "classifier")
    assert meta["kind"] == "classifier" and cfg.label_names == ["neg", "pos"]


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"format": "bmf-trainer-state", "version": 1}',
                                     '{"format": "bmf-trainer-state", "version": 1, "step": 3, "optimizer": 5}'])
def test_corrupt_trainer_state(tiny_data, cli_run, tmp_path, capsys, content):
    run = _copy(cli_run, tmp_path / "run")
    (run / "checkpoint" / ckpt.TRAINER).write_text(content)
    _resign(run / "checkpoint")
    with pytest.raises(ValueError, match="trainer_state.json"):
        ckpt.load_trainer_state(run / "checkpoint")
    assert main(_resume_args(tiny_data, run)) == 2
    _one_line_error(capsys, "trainer_state.json")


def test_garbage_trainer_tensors(tiny_data, cli_run, tmp_path, capsys):
    run = _copy(cli_run, tmp_path / "run")
    (run / "checkpoint" / ckpt.TRAINER_TENSORS).write_bytes(b"\x00garbage" * 20)
    assert main(_resume_args(tiny_data, run)) == 2
    _one_line_error(capsys, "trainer_state.safetensors")  # the manifest names it (size differs)
    _resign(run / "checkpoint")
    assert main(_resume_args(tiny_data, run)) == 2
    _one_line_error(capsys, "trainer_state.safetensors", "not a readable safetensors file")


def test_no_torch_load_outside_the_safe_loader():
    import pathlib

    import bigmodel_fast

    root = pathlib.Path(bigmodel_fast.__file__).parent
    hits = [str(p.relative_to(root)) for p in root.rglob("*.py") if "torch.load(" in p.read_text(encoding="utf-8")]
    assert hits == ["checkpoint.py"]
    text = (root / "checkpoint.py").read_text(encoding="utf-8")
    assert text.count("torch.load(") == 1 and "weights_only=False" not in text
