"""checkpoint (the module): save/load round trip, one-line errors for missing files, a shape mismatch and a wrong
kind, the trainer state's JSON/tensor split, and the one torch.load refusing pickled code. End-to-end faults (every
command on damaged files, resume): tests/test_checkpoint_faults.py."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from bigmodel_fast import __version__, fsio
from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.models import build_pretraining_model
from bigmodel_fast.models.config import ModelConfig

from .hostile_pickle import Evil

SMALL = dict(arch="bert", vocab_size=40, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
             max_position=16)


def _model(**overrides):
    cfg = ModelConfig.from_dict({**SMALL, **overrides})
    torch.manual_seed(0)
    return build_pretraining_model(cfg), cfg


def _trained_optimizer(model):
    """An AdamW after one step: its state holds tensors (exp_avg, step) and plain numbers (param_groups)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sum(p.square().sum() for p in model.parameters()).backward()
    opt.step()
    return opt


def _trainer_state(model):
    return {"step": 7, "skipped_nonfinite": 1, "optimizer": _trained_optimizer(model).state_dict(),
            "scheduler": {"step": 7}, "loader": {"position": 12, "seed": 3}, "rng": ckpt.rng_state()}


def _save(path, model, cfg, tmp_path, kind="pretrain", trainer_state=None):
    tok = tmp_path / "tok.model"
    tok.write_bytes(b"a sentencepiece model")
    return ckpt.save_checkpoint(path, model, cfg.to_dict(), tok, {"kind": kind, "step": 7}, trainer_state)


def test_save_load_round_trip(tmp_path):
    model, cfg = _model()
    state = _trainer_state(model)
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path, trainer_state=state)
    assert {p.name for p in path.iterdir()} == {ckpt.CONFIG, ckpt.WEIGHTS, ckpt.TOKENIZER, ckpt.META, ckpt.TRAINER,
                                               ckpt.TRAINER_TENSORS, fsio.MANIFEST}
    assert fsio.verify_manifest(path, required=True)
    cfg_dict, meta = ckpt.read_meta(path)
    assert cfg_dict == cfg.to_dict() and meta == {"bmf_version": __version__, "kind": "pretrain", "step": 7}
    loaded, loaded_cfg, _ = ckpt.load_model(path, "pretrain")
    assert loaded_cfg == cfg
    want = model.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert (path / ckpt.TOKENIZER).read_bytes() == b"a sentencepiece model"

    again = ckpt.load_trainer_state(path)
    assert (again["step"], again["skipped_nonfinite"], again["scheduler"], again["loader"]) == (
        7, 1, {"step": 7}, {"position": 12, "seed": 3})
    _assert_same_optimizer(again["optimizer"], state["optimizer"])


def test_saving_again_replaces_the_checkpoint(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path, trainer_state=_trainer_state(model))
    _save(path, model, cfg, tmp_path)  # no trainer state this time
    assert not (path / ckpt.TRAINER).exists() and fsio.verify_manifest(path, required=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "tok.model"]  # no staging left behind


def _assert_same_optimizer(got, want):
    def plain(groups):  # through JSON a tuple (betas) comes back as a list
        return json.loads(json.dumps(groups))

    assert plain(got["param_groups"]) == plain(want["param_groups"])
    assert set(got["state"]) == set(want["state"])
    for pid, entries in want["state"].items():
        assert set(got["state"][pid]) == set(entries)
        for name, value in entries.items():
            assert torch.equal(got["state"][pid][name], value), (pid, name)


def test_split_join_round_trip():
    model, _ = _model()
    state = _trainer_state(model)
    doc, tensors = ckpt.split_trainer_state(state)
    json.dumps(doc, allow_nan=False)  # strict JSON, nothing pickled (raises TypeError on a tensor or an object)
    assert doc["format"] == ckpt.TRAINER_FORMAT and doc["version"] == 1
    assert all(isinstance(v, torch.Tensor) for v in tensors.values()) and "rng.torch" in tensors
    assert any(k.startswith("optimizer.0.") for k in tensors)
    joined = ckpt.join_trainer_state(doc, tensors)
    assert set(joined) == set(state)
    _assert_same_optimizer(joined["optimizer"], state["optimizer"])
    assert {k: joined[k] for k in ("step", "skipped_nonfinite", "scheduler", "loader")} == {
        k: state[k] for k in ("step", "skipped_nonfinite", "scheduler", "loader")}
    assert torch.equal(joined["rng"]["torch"], state["rng"]["torch"])
    assert joined["rng"]["python"] == state["rng"]["python"]
    want_np, got_np = state["rng"]["numpy"], joined["rng"]["numpy"]
    assert got_np[0] == want_np[0] and np.array_equal(got_np[1], want_np[1]) and tuple(got_np[2:]) == tuple(want_np[2:])


def test_joined_rng_state_replays_the_same_draws():
    state = ckpt.rng_state()
    first = (random.random(), float(np.random.rand()), torch.rand(3))
    ckpt.set_rng_state(ckpt.join_trainer_state(*_split_rng_only(state))["rng"])
    second = (random.random(), float(np.random.rand()), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def _split_rng_only(rng):
    return ckpt.split_trainer_state({"step": 0, "optimizer": {"state": {}, "param_groups": []}, "rng": rng})


def test_join_of_a_malformed_document_raises():
    doc, tensors = _split_rng_only(ckpt.rng_state())
    del tensors["rng.torch"]
    with pytest.raises(KeyError, match="rng.torch"):
        ckpt.join_trainer_state(doc, tensors)


def test_missing_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match=r"nowhere: not a directory; expected a checkpoint directory"):
        ckpt.open_checkpoint(tmp_path / "nowhere")
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path)
    (path / fsio.MANIFEST).unlink()  # a checkpoint from before manifests: the file checks themselves
    (path / ckpt.META).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"ckpt: missing meta\.json; expected a checkpoint directory"):
        ckpt.read_meta(path)
    (path / ckpt.WEIGHTS).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"missing model\.safetensors"):
        ckpt.load_weights(path, model)
    with pytest.raises(ckpt.CheckpointError, match=r"missing trainer_state\.json"):
        ckpt.load_trainer_state(path)


def test_a_file_missing_from_a_manifested_checkpoint(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path)
    (path / ckpt.WEIGHTS).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"model\.safetensors"):
        ckpt.open_checkpoint(path)


def test_shape_mismatch_names_the_tensor(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path)
    other, _ = _model(vocab_size=48)
    with pytest.raises(ckpt.CheckpointError, match=r"model\.safetensors: tensor '.*' has shape \[40, 16\] but the "
                                                   r"model in config\.json needs \[48, 16\]"):
        ckpt.load_weights(path, other)


def test_missing_or_unexpected_keys(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path)
    bigger, _ = _model(num_layers=2)
    with pytest.raises(ckpt.CheckpointError, match=r"weights do not fit the model in config\.json \(missing \["):
        ckpt.load_weights(path, bigger)


def test_wrong_kind(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path)
    with pytest.raises(ckpt.CheckpointError, match=r"expected a classifier checkpoint \(meta\.json kind "
                                                   r"'classifier'\), got kind 'pretrain'"):
        ckpt.load_model(path, "classifier")


def test_unbuildable_config(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path)
    (path / ckpt.CONFIG).write_text(json.dumps({**cfg.to_dict(), "hidden_size": "wide"}))
    (path / fsio.MANIFEST).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"config\.json: not a buildable model config"):
        ckpt.load_model(path, "pretrain")


def test_trainer_state_of_another_format(tmp_path):
    model, cfg = _model()
    path = _save(tmp_path / "ckpt", model, cfg, tmp_path, trainer_state=_trainer_state(model))
    doc = json.loads((path / ckpt.TRAINER).read_text())
    (path / ckpt.TRAINER).write_text(json.dumps({**doc, "version": 2}))
    (path / fsio.MANIFEST).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"trainer_state\.json: not a bmf trainer state"):
        ckpt.load_trainer_state(path)


def test_safe_torch_load_refuses_a_hostile_pickle(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pt"
    torch.save({"step": 1, "payload": Evil(marker)}, f)
    with pytest.raises(ckpt.CheckpointError, match=r"evil\.pt: refused to load .*never pickled code"):
        ckpt.safe_torch_load(f)
    assert not marker.exists()


def test_safe_torch_load_reads_plain_tensors_and_containers(tmp_path):
    f = tmp_path / "plain.pt"
    torch.save({"step": 3, "t": torch.arange(4), "nested": [1.5, {"a": torch.ones(2)}]}, f)
    got = ckpt.safe_torch_load(f)
    assert got["step"] == 3 and torch.equal(got["t"], torch.arange(4)) and torch.equal(got["nested"][1]["a"],
                                                                                       torch.ones(2))
