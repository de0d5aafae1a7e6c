from __future__ import annotations

import json

import pytest

from bigmodel_fast.models import ConfigError, ModelConfig


def test_defaults_and_arch_default_ln():
    assert ModelConfig(arch="bert").use_pre_ln() is False
    assert ModelConfig(arch="gpt").use_pre_ln() is True
    assert ModelConfig(arch="bert", pre_ln=True).use_pre_ln() is True
    assert ModelConfig(arch="gpt", pre_ln=False).use_pre_ln() is False


def test_dict_and_file_round_trip(tmp_path):
    cfg = ModelConfig(arch="gpt", vocab_size=123, hidden_size=48, num_heads=6, num_kv_heads=2, num_labels=2,
                      label_names=["neg", "pos"], dropout=0.0, pre_ln=True)
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert ModelConfig.from_dict(d) == cfg
    path = cfg.save(tmp_path / "sub" / "config.json")
    assert ModelConfig.load(path) == cfg
    # ints are accepted for float fields and normalised
    assert isinstance(ModelConfig.from_dict({"dropout": 0}).dropout, float)
    # missing keys take defaults
    assert ModelConfig.from_dict({"arch": "gpt"}).hidden_size == ModelConfig().hidden_size


def test_unknown_key_named():
    with pytest.raises(ConfigError, match="'hiden_size'") as ei:
        ModelConfig.from_dict({"hiden_size": 64})
    assert "hidden_size" in str(ei.value)  # lists the valid fields


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("vocab_size", "100", "'vocab_size'.*int > 0.*str"),
        ("num_layers", True, "'num_layers'.*bool"),
        ("dropout", "0.1", "'dropout'.*float"),
        ("tie_embeddings", 1, "'tie_embeddings'.*bool"),
        ("arch", "t5", "'arch'.*bert, gpt"),
        ("hidden_size", 0, "'hidden_size'.*> 0"),
        ("num_heads", -1, "'num_heads'"),
        ("dropout", 1.0, "'dropout'.*\\[0, 1\\)"),
        ("pad_id", 8000, "'pad_id'"),
        ("label_names", "ab", "'label_names'"),
        ("num_kv_heads", 3, "'num_kv_heads'"),
    ],
)
def test_invalid_values_named(field, value, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict({field: value})


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="not divisible by num_heads"):
        ModelConfig(hidden_size=100, num_heads=3)
    with pytest.raises(ConfigError, match="label_names"):
        ModelConfig(num_labels=3, label_names=["a", "b"])
    with pytest.raises(ConfigError, match="type_vocab_size"):
        ModelConfig(arch="bert", type_vocab_size=0)
    assert ModelConfig(arch="gpt", type_vocab_size=0).type_vocab_size == 0


def test_load_errors_name_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        ModelConfig.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "arch": "bert",\n  oops\n}\n')
    with pytest.raises(ConfigError, match=r"bad.json:3"):
        ModelConfig.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"num_layers": "four"}))
    with pytest.raises(ConfigError, match=r"wrong.json.*'num_layers'"):
        ModelConfig.load(wrong)
    notobj = tmp_path / "list.json"
    notobj.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        ModelConfig.load(notobj)


def test_field_types_are_derived_from_the_annotations():
    import dataclasses

    from bigmodel_fast.models.config import _field_types

    table = _field_types()
    assert set(table) == {f.name for f in dataclasses.fields(ModelConfig)}
    assert table["vocab_size"] == ((int,), "int > 0")
    assert table["dropout"][0] == (float, int) and table["num_kv_heads"][0] == (int, type(None))
    assert table["label_names"][0] == (list, tuple) and table["pre_ln"][0] == (bool, type(None))
