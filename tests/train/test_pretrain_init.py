"""``bmf pretrain --init CKPT``: continue pretraining a checkpoint's model with fresh optimizer and schedule."""

import dataclasses
import gzip
import itertools
import shutil

import pytest
import torch
from safetensors.torch import load_file

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.cli import main
from bigmodel_fast.data.data_dir import PreparedData
from bigmodel_fast.data.loader import TokenLoader
from bigmodel_fast.data.tokenizer_base import load_tokenizer
from bigmodel_fast.ops import attention as attention_mod
from bigmodel_fast.train import pretrain as pretrain_mod
from bigmodel_fast.train.metrics_log import read_metrics
from bigmodel_fast.train.optim import OptimConfig
from bigmodel_fast.train.pretrain import pretrain

from .pretrain_helpers import TINY, tiny_config

NO_DROPOUT = {**TINY, "dropout": 0.0}  # training-mode losses are then a function of weights and batch only


def init_config(data, out, init, **kw):
    """A run that takes its model from ``init`` (no preset or model overrides of its own)."""
    return tiny_config(data, out, **{"init": str(init), "preset": None, "model_overrides": {}, **kw})


@pytest.fixture(scope="module", params=["bert", "gpt"])
def init_ckpt(request, tiny_data, tmp_path_factory):
    """A 3-step checkpoint without dropout, of each pretraining arch."""
    out = tmp_path_factory.mktemp(f"init_{request.param}")
    pretrain(tiny_config(tiny_data, out, arch=request.param, model_overrides=NO_DROPOUT, max_steps=3,
                         optim=OptimConfig(lr=3e-3, warmup_steps=1)))
    return out / "checkpoint"


def step_losses(run) -> list[float]:
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]


@torch.no_grad()
def first_batch_loss(model, cfg, data) -> float:
    """Loss of ``model`` (training mode, as the first step sees it) on batch 0 of ``cfg``'s train loader."""
    tok = load_tokenizer(PreparedData(data).tokenizer_file)
    loader = pretrain_mod.make_loader(cfg, PreparedData(data).train_shards(), tok, seed=cfg.seed)
    try:
        batch = loader.batch(0)
    finally:
        loader.close()
    model.train()
    return float(model(**batch)["loss"])


def test_first_step_loss_is_the_init_checkpoints(tiny_data, init_ckpt, tmp_path):
    model, model_cfg, _ = ckpt.load_model(init_ckpt, "pretrain")
    cfg = init_config(tiny_data, tmp_path, init_ckpt, max_steps=4)
    summary = pretrain(cfg)

    expected = first_batch_loss(model, dataclasses.replace(cfg, arch=model_cfg.arch), tiny_data)
    fresh = pretrain_mod.build_pretraining_model(model_cfg)  # the same config, random weights
    assert abs(first_batch_loss(fresh, dataclasses.replace(cfg, arch=model_cfg.arch), tiny_data) - expected) > 1e-3
    losses = step_losses(tmp_path)
    assert losses[0] == pytest.approx(expected, rel=1e-6, abs=1e-6)

    saved_cfg, meta = ckpt.read_meta(tmp_path / "checkpoint")
    assert saved_cfg == model_cfg.to_dict()  # the checkpoint's model, arch included, without --arch
    assert meta["train_config"]["arch"] == model_cfg.arch
    assert meta["init"]["checkpoint"] == str(init_ckpt.resolve()) and meta["init"]["step"] == 3
    assert meta["step"] == 4 and summary["start_step"] == 0  # a fresh step count ...
    state = ckpt.load_trainer_state(tmp_path / "checkpoint")
    assert state["scheduler"]["step"] == 4  # ... and schedule
    assert summary["init"] == str(init_ckpt.resolve())


def test_init_loss_goes_down(tiny_data, tiny_pretrained, tmp_path):
    pretrain(init_config(tiny_data, tmp_path, tiny_pretrained, max_steps=30,
                         optim=OptimConfig(lr=3e-3, warmup_steps=2)))
    losses = step_losses(tmp_path)
    assert len(losses) == 30
    head, tail = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert tail < head - 0.3, losses


def test_init_runs_through_the_native_loader_and_attention_dispatch(tiny_data, tiny_pretrained, tmp_path,
                                                                    monkeypatch):
    loaders, backends = [], []
    real_loader, real_backend = pretrain_mod.make_loader, attention_mod.attention_backend

    def spy_loader(*a, **kw):
        loaders.append(real_loader(*a, **kw))
        return loaders[-1]

    def spy_backend(*a, **kw):
        backends.append(real_backend(*a, **kw))
        return backends[-1]

    monkeypatch.setattr(pretrain_mod, "make_loader", spy_loader)
    monkeypatch.setattr(attention_mod, "attention_backend", spy_backend)
    pretrain(init_config(tiny_data, tmp_path, tiny_pretrained, max_steps=2))
    assert loaders and all(isinstance(ld, TokenLoader) for ld in loaders)
    # every attention call of the model went through the one dispatch point and got what it resolves to anyway
    assert len(backends) >= 2 * 2 and set(backends) == {"sdpa"}


def test_resume_wins_over_init(tiny_data, init_ckpt, tmp_path):
    straight = tmp_path / "straight"
    pretrain(init_config(tiny_data, straight, init_ckpt, max_steps=6))
    source = tmp_path / "source"  # a copy, removed before the resume: a resumed run must not read it again
    shutil.copytree(init_ckpt, source)
    parted = tmp_path / "parted"
    pretrain(init_config(tiny_data, parted, source, max_steps=6, stop_at=3))
    shutil.rmtree(source)
    summary = pretrain(init_config(tiny_data, parted, source, max_steps=6, resume=True))
    assert summary["start_step"] == 3 and summary["steps"] == 6
    a = load_file(str(straight / "checkpoint" / ckpt.WEIGHTS))
    b = load_file(str(parted / "checkpoint" / ckpt.WEIGHTS))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert ckpt.read_meta(parted / "checkpoint")[1]["init"]["checkpoint"] == str(source.resolve())
    with pytest.raises(ValueError, match=r"--resume with changed settings \(.*init"):
        pretrain(init_config(tiny_data, parted, init_ckpt, max_steps=8, resume=True))


def _one_line_exit_2(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def other_data(tiny_data, tmp_path_factory):
    """Two corpora prepared with tokenizers of their own: one of tiny_data's vocabulary size, one smaller."""
    from bigmodel_fast.data import sample_files as samples
    from bigmodel_fast.data.prepare import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("other_data")
    inputs = []
    for p in samples.corpus_paths():
        with gzip.open(p, "rt", encoding="utf-8") as f, gzip.open(root / p.name, "wt", encoding="utf-8") as g:
            g.writelines(itertools.islice(f, 80, 160))  # other documents than tiny_data's
        inputs.append(str(root / p.name))
    vocab = load_tokenizer(PreparedData(tiny_data).tokenizer_file).vocab_size
    out = {}
    for name, size in (("same_vocab", vocab), ("small_vocab", 1350)):
        prepare(PrepareConfig(inputs=inputs, out=str(root / name), vocab_size=size, valid_fraction=0.1,
                              quality=False, progress=False))
        out[name] = root / name
    assert load_tokenizer(PreparedData(out["same_vocab"]).tokenizer_file).vocab_size == vocab
    return out


@pytest.mark.parametrize("which, detail", [("same_vocab", "sha256"), ("small_vocab", "vocab 1350 vs")])
def test_tokenizer_mismatch_is_one_line_exit_2(tiny_pretrained, other_data, tmp_path, capsys, which, detail):
    out = tmp_path / "run"
    err = _one_line_exit_2(capsys, ["pretrain", "--data", str(other_data[which]), "--out", str(out), "--init",
                                    str(tiny_pretrained), "--seq-len", "32", "--max-steps", "1", "--device", "cpu",
                                    "--no-progress"])
    assert str(other_data[which]) in err and detail in err
    assert f"bmf prepare --tokenizer {tiny_pretrained}" in err
    assert not (out / "checkpoint").exists()


def test_settings_that_conflict_with_the_checkpoint(tiny_data, tiny_pretrained, tiny_classifier, tmp_path):
    with pytest.raises(ValueError, match=r"hidden_size 128 \(checkpoint: 32\)"):
        pretrain(init_config(tiny_data, tmp_path / "a", tiny_pretrained, preset="tiny"))
    with pytest.raises(ValueError, match=r"arch 'gpt' \(checkpoint: 'bert'\)"):
        pretrain(init_config(tiny_data, tmp_path / "b", tiny_pretrained, arch="gpt"))
    with pytest.raises(ValueError, match=r"num_layers 3 \(checkpoint: 2\)"):
        pretrain(init_config(tiny_data, tmp_path / "c", tiny_pretrained, model_overrides={"num_layers": 3}))
    with pytest.raises(ValueError, match="seq_len 1024 is longer than the checkpoint's max_position 512"):
        pretrain(init_config(tiny_data, tmp_path / "d", tiny_pretrained, seq_len=1024))
    with pytest.raises(ckpt.CheckpointError, match="expected a pretraining checkpoint .* got kind 'classifier'"):
        pretrain(init_config(tiny_data, tmp_path / "e", tiny_classifier))
    with pytest.raises(ckpt.CheckpointError, match="not a directory"):
        pretrain(init_config(tiny_data, tmp_path / "f", tmp_path / "nowhere"))
    # settings that say what the checkpoint holds are accepted (the conftest run used preset tiny + TINY)
    pretrain(init_config(tiny_data, tmp_path / "g", tiny_pretrained, preset="tiny", model_overrides=TINY,
                         arch="bert", max_steps=1))


def test_help_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    assert "--init CKPT" in capsys.readouterr().out
    cfg = tiny_config("d", "o", preset=None, arch=None)
    assert (cfg.arch, cfg.preset, cfg.init) == ("bert", "tiny", None)  # without --init: the defaults as before
    assert "init" in pretrain_mod.RESUME_FIXED


def _tiny_hf(arch: str, dir):
    """A small random HF model without dropout (BertForPreTraining or GPT2LMHeadModel) and a WordPiece
    tokenizer.json of its 60 ids, saved in ``dir`` (built here, never downloaded)."""
    transformers = pytest.importorskip("transformers", reason="transformers builds the HF checkpoint to import")
    tokenizers = pytest.importorskip("tokenizers", reason="tokenizers builds the HF checkpoint's tokenizer.json")
    torch.manual_seed(0)
    if arch == "bert":
        model = transformers.BertForPreTraining(transformers.BertConfig(
            vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    else:
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=60, n_embd=32, n_layer=2, n_head=2, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0))
    model.save_pretrained(str(dir))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz"]
    words += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    words += [f"w{i}" for i in range(60 - len(words))]
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tok.save(str(dir / "tokenizer.json"))
    return dir


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_init_from_an_imported_hf_checkpoint(arch, tmp_path):
    """import-hf -> prepare --tokenizer -> pretrain --init: MLM (bert) / causal LM (gpt) from the imported weights."""
    from bigmodel_fast.data import sample_files as samples
    from bigmodel_fast.data.prepare import PrepareConfig, prepare
    from bigmodel_fast.hf import import_hf

    src = _tiny_hf(arch, tmp_path / "hf")
    imported = tmp_path / "ckpt"
    import_hf(src, imported)
    corpus = tmp_path / "corpus.jsonl.gz"
    with gzip.open(samples.corpus_paths()[0], "rt", encoding="utf-8") as f:
        lines = list(itertools.islice(f, 60))
    with gzip.open(corpus, "wt", encoding="utf-8") as g:
        g.writelines(lines)
    data = tmp_path / "data"
    prepare(PrepareConfig(inputs=[str(corpus)], out=str(data), tokenizer=str(imported), valid_fraction=0.1,
                          quality=False, progress=False))
    cfg = init_config(data, tmp_path / "run", imported, max_steps=3)
    summary = pretrain(cfg)
    model, model_cfg, _ = ckpt.load_model(imported, "pretrain")
    assert model_cfg.arch == arch and summary["steps"] == 3
    expected = first_batch_loss(model, dataclasses.replace(cfg, arch=arch), data)
    assert step_losses(tmp_path / "run")[0] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert ckpt.read_meta(tmp_path / "run" / "checkpoint")[0] == model_cfg.to_dict()
