"""HF ``config.json`` <-> :class:`~bigmodel_fast.models.config.ModelConfig`.

:func:`from_hf_config` maps a BERT / RoBERTa / GPT-2 config to ours and raises a one-line ``ValueError`` naming
the file, the field and its value for anything our models cannot express (``position_embedding_type`` other than
absolute, an unknown activation, decoder / cross-attention BERTs, GPT-2's per-layer attention scaling, ...).
:func:`to_hf_config` writes ours back as the HF config of a model type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bigmodel_fast.models.config import ModelConfig

__all__ = ["HF_ACTIVATIONS", "HFModelSpec", "MODEL_TYPES", "from_hf_config", "to_hf_config"]

MODEL_TYPES = ("bert", "roberta", "gpt2")
# HF activation name -> ours (gelu_pytorch_tanh is the same tanh approximation as gelu_new)
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "relu": "relu"}
# HF architectures we import, by model type: name -> checkpoint kind
ARCHITECTURES = {
    "bert": {"BertModel": "pretrain", "BertForMaskedLM": "pretrain", "BertForPreTraining": "pretrain",
             "BertForSequenceClassification": "classifier"},
    "roberta": {"RobertaModel": "pretrain", "RobertaForMaskedLM": "pretrain",
                "RobertaForSequenceClassification": "classifier"},
    "gpt2": {"GPT2Model": "pretrain", "GPT2LMHeadModel": "pretrain"},
}


@dataclass
class HFModelSpec:
    """What an HF config describes: ``model_type``, the ``architecture`` (class name), the checkpoint ``kind``
    ("pretrain" | "classifier") and our :class:`ModelConfig`."""

    model_type: str
    architecture: str
    kind: str
    config: ModelConfig
    notes: list[str] = field(default_factory=list)


def _get(hf: dict, name: str, types: tuple[type, ...], where: str, default: Any = ...) -> Any:
    value = hf.get(name, default)
    if value is ...:
        raise ValueError(f"{where}: missing field {name!r}")
    if value is not None and (isinstance(value, bool) and bool not in types or not isinstance(value, types)):
        raise ValueError(f"{where}: field {name!r} has {type(value).__name__} {value!r}, "
                         f"expected {' or '.join(t.__name__ for t in types)}")
    return value


def _refuse(hf: dict, name: str, ok, where: str, why: str) -> None:
    """ValueError when ``hf[name]`` is present and ``ok(value)`` is false."""
    if name in hf and not ok(hf[name]):
        raise ValueError(f"{where}: field {name!r} = {hf[name]!r} cannot be expressed by bmf models ({why})")


def _activation(hf: dict, name: str, default: str, where: str) -> str:
    act = hf.get(name, default)
    if act not in HF_ACTIVATIONS:
        raise ValueError(f"{where}: field {name!r} = {act!r} cannot be expressed by bmf models "
                         f"(supported: {', '.join(HF_ACTIVATIONS)})")
    return HF_ACTIVATIONS[act]


def _architecture(hf: dict, model_type: str, where: str, has_classifier: bool) -> tuple[str, str]:
    archs = hf.get("architectures") or []
    known = ARCHITECTURES[model_type]
    if not isinstance(archs, list) or not archs:
        guess = next(a for a, k in known.items() if k == ("classifier" if has_classifier else "pretrain"))
        return guess, known[guess]
    arch = archs[0]
    if arch not in known:
        raise ValueError(f"{where}: field 'architectures' = {archs!r} is not supported; "
                         f"supported for {model_type}: {', '.join(known)}")
    return arch, known[arch]


def _labels(hf: dict, where: str) -> list[str]:
    id2label = hf.get("id2label")
    if isinstance(id2label, dict) and id2label:
        try:
            order = sorted(id2label, key=int)
        except ValueError:
            raise ValueError(f"{where}: field 'id2label' has non-integer keys {sorted(id2label)[:3]!r}") from None
        if [int(k) for k in order] != list(range(len(order))):
            raise ValueError(f"{where}: field 'id2label' keys must be 0..{len(order) - 1}, got {order!r}")
        return [str(id2label[k]) for k in order]
    n = _get(hf, "num_labels", (int,), where, 2)
    return [f"LABEL_{i}" for i in range(n)]


def from_hf_config(hf: dict, where: str, has_classifier: bool = False) -> HFModelSpec:
    """Map the HF config dict ``hf`` (read from ``where``) to an :class:`HFModelSpec`.

    ``has_classifier``: the weights hold a classification head (used when ``architectures`` is absent).
    """
    if not isinstance(hf, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(hf).__name__}")
    model_type = hf.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{where}: field 'model_type' = {model_type!r} is not supported; "
                         f"supported: {', '.join(MODEL_TYPES)}")
    arch, kind = _architecture(hf, model_type, where, has_classifier)
    for name in ("add_cross_attention", "is_decoder", "is_encoder_decoder"):
        _refuse(hf, name, lambda v: not v, where, "bmf has no decoder / cross-attention variant of this model")
    labels = _labels(hf, where) if kind == "classifier" else []
    if model_type == "gpt2":
        cfg = _gpt2(hf, where, labels)
    else:
        cfg = _bert(hf, where, model_type, labels)
    return HFModelSpec(model_type, arch, kind, cfg)


def _bert(hf: dict, where: str, model_type: str, labels: list[str]) -> ModelConfig:
    _refuse(hf, "position_embedding_type", lambda v: v in (None, "absolute"), where,
            "only learned absolute positions")
    act = _activation(hf, "hidden_act", "gelu", where)
    if model_type == "roberta" and act != "gelu":  # RobertaLMHead applies exact gelu whatever hidden_act says
        raise ValueError(f"{where}: field 'hidden_act' = {hf.get('hidden_act')!r} cannot be expressed by bmf "
                         f"models for roberta (its LM head always uses gelu)")
    pad = _get(hf, "pad_token_id", (int,), where, 0 if model_type == "bert" else 1)
    pad = 0 if pad is None else pad
    hidden = _get(hf, "hidden_size", (int,), where)
    values = dict(
        arch="bert", vocab_size=_get(hf, "vocab_size", (int,), where), hidden_size=hidden,
        num_layers=_get(hf, "num_hidden_layers", (int,), where),
        num_heads=_get(hf, "num_attention_heads", (int,), where),
        intermediate_size=_get(hf, "intermediate_size", (int,), where, 4 * hidden),
        max_position=_get(hf, "max_position_embeddings", (int,), where, 512),
        type_vocab_size=_get(hf, "type_vocab_size", (int,), where, 2),
        dropout=_get(hf, "hidden_dropout_prob", (float, int), where, 0.1),
        pre_ln=False, layer_norm_eps=_get(hf, "layer_norm_eps", (float, int), where, 1e-12), pad_id=pad,
        tie_embeddings=_get(hf, "tie_word_embeddings", (bool,), where, True),
        num_labels=len(labels), label_names=labels,
        initializer_range=_get(hf, "initializer_range", (float, int), where, 0.02), hidden_act=act,
        position_offset=pad + 1 if model_type == "roberta" else 0,
    )
    return _build(values, where, hf)


def _gpt2(hf: dict, where: str, labels: list[str]) -> ModelConfig:
    for name in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        _refuse(hf, name, lambda v: not v, where, "bmf attention scales by 1/sqrt(head_dim) only")
    _refuse(hf, "scale_attn_weights", lambda v: bool(v), where, "bmf attention always scales by 1/sqrt(head_dim)")
    act = _activation(hf, "activation_function", "gelu_new", where)
    vocab = _get(hf, "vocab_size", (int,), where)
    pad = _get(hf, "pad_token_id", (int,), where, None)
    eos = _get(hf, "eos_token_id", (int,), where, None)
    if pad is None:  # GPT-2 has no pad token; pad with eos (its usual convention) when it is in the vocabulary
        pad = eos if eos is not None and 0 <= eos < vocab else 0
    hidden = _get(hf, "n_embd", (int,), where)
    inner = _get(hf, "n_inner", (int,), where, None)
    values = dict(
        arch="gpt", vocab_size=vocab, hidden_size=hidden, num_layers=_get(hf, "n_layer", (int,), where),
        num_heads=_get(hf, "n_head", (int,), where), intermediate_size=inner or 4 * hidden,
        max_position=_get(hf, "n_positions", (int,), where, 1024), type_vocab_size=0,
        dropout=_get(hf, "resid_pdrop", (float, int), where, 0.1), pre_ln=True,
        layer_norm_eps=_get(hf, "layer_norm_epsilon", (float, int), where, 1e-5), pad_id=pad,
        tie_embeddings=_get(hf, "tie_word_embeddings", (bool,), where, True), num_labels=len(labels),
        label_names=labels, initializer_range=_get(hf, "initializer_range", (float, int), where, 0.02),
        hidden_act=act,
    )
    return _build(values, where, hf)


_FROM_HF_PROBLEM = {None: "single_label", "single_label_classification": "single_label",
                    "multi_label_classification": "multi_label", "regression": "regression"}
_TO_HF_PROBLEM = {"single_label": "single_label_classification", "multi_label": "multi_label_classification",
                  "regression": "regression"}


def _build(values: dict, where: str, hf: dict | None = None) -> ModelConfig:
    if hf is not None and values.get("num_labels"):
        problem = hf.get("problem_type")
        if problem not in _FROM_HF_PROBLEM:
            raise ValueError(f"{where}: field 'problem_type' is {problem!r}; expected one of "
                             f"{', '.join(k for k in _FROM_HF_PROBLEM if k)} or absent")
        values["problem_type"] = _FROM_HF_PROBLEM[problem]
    try:
        return ModelConfig.from_dict(values)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


# ------------------------------------------------------------------------------------------------------- export
_TO_HF_ACT = {"gelu": "gelu", "gelu_new": "gelu_new", "relu": "relu"}


def _cannot(cfg: ModelConfig, why: str) -> ValueError:
    return ValueError(f"model config cannot be written as a Hugging Face config: {why}")


def to_hf_config(cfg: ModelConfig, model_type: str, architecture: str, base: dict | None = None) -> dict:
    """The HF config dict of ``cfg`` as ``model_type`` / ``architecture``; ``base`` (the imported HF config, when
    there was one) supplies the fields we do not model (bos/eos ids, ...). ValueError when HF cannot express it."""
    out = {k: v for k, v in (base or {}).items() if k not in ("id2label", "label2id", "num_labels")}
    if cfg.num_kv_heads not in (None, cfg.num_heads):
        raise _cannot(cfg, f"num_kv_heads={cfg.num_kv_heads} (grouped-query attention) has no HF {model_type} field")
    if model_type == "gpt2":
        if cfg.arch != "gpt" or not cfg.use_pre_ln() or cfg.position_offset:
            raise _cannot(cfg, "gpt2 needs arch gpt, pre-LN blocks and position_offset 0")
        out.update(model_type="gpt2", architectures=[architecture], vocab_size=cfg.vocab_size, n_embd=cfg.hidden_size,
                   n_layer=cfg.num_layers, n_head=cfg.num_heads, n_inner=cfg.intermediate_size,
                   n_positions=cfg.max_position, activation_function=_TO_HF_ACT[cfg.hidden_act],
                   resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                   layer_norm_epsilon=cfg.layer_norm_eps, initializer_range=cfg.initializer_range,
                   tie_word_embeddings=cfg.tie_embeddings, scale_attn_weights=True,
                   scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False, add_cross_attention=False,
                   pad_token_id=out.get("pad_token_id"))
    else:
        if cfg.arch != "bert" or cfg.use_pre_ln():
            raise _cannot(cfg, f"{model_type} needs arch bert with post-LN blocks (pre_ln false)")
        if model_type == "bert" and cfg.position_offset:
            raise _cannot(cfg, f"position_offset={cfg.position_offset} needs model type roberta")
        if model_type == "roberta" and cfg.position_offset != cfg.pad_id + 1:
            raise _cannot(cfg, f"roberta needs position_offset = pad_id + 1, got {cfg.position_offset} "
                               f"with pad_id {cfg.pad_id}")
        out.update(model_type=model_type, architectures=[architecture], vocab_size=cfg.vocab_size,
                   hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                   num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
                   hidden_act=_TO_HF_ACT[cfg.hidden_act], hidden_dropout_prob=cfg.dropout,
                   attention_probs_dropout_prob=cfg.dropout, max_position_embeddings=cfg.max_position,
                   type_vocab_size=cfg.type_vocab_size, initializer_range=cfg.initializer_range,
                   layer_norm_eps=cfg.layer_norm_eps, pad_token_id=cfg.pad_id, position_embedding_type="absolute",
                   tie_word_embeddings=cfg.tie_embeddings, is_decoder=False, add_cross_attention=False)
    if cfg.num_labels:
        names = cfg.label_names or [f"LABEL_{i}" for i in range(cfg.num_labels)]
        out["id2label"] = {str(i): n for i, n in enumerate(names)}
        out["label2id"] = {n: i for i, n in enumerate(names)}
        out["problem_type"] = _TO_HF_PROBLEM[cfg.problem_type]
    out.pop("transformers_version", None)
    out.pop("torch_dtype", None)
    out["dtype"] = "float32"
    return out
