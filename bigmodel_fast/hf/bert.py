"""BERT / RoBERTa <-> bmf ``bert`` tensor names (:class:`~bigmodel_fast.hf.rules.Rule` lists).

HF (``p`` = ``bert.`` / ``roberta.`` or empty for a bare ``BertModel``)    bmf (``backbone.`` prefix)
``p embeddings.{word,position,token_type}_embeddings``, ``LayerNorm``      ``embeddings.*``, ``embeddings.norm``
``p encoder.layer.N.attention.self.{query,key,value}``                    ``layers.N.attn.qkv`` (concatenated)
``... attention.output.dense`` / ``.LayerNorm``                            ``layers.N.attn.out`` / ``ln1``
``... intermediate.dense``, ``output.dense`` / ``output.LayerNorm``        ``layers.N.mlp.fc1``, ``fc2`` / ``ln2``
``p pooler.dense`` (RoBERTa classifier: ``classifier.dense``)              ``pooler``
``cls.predictions.transform.{dense,LayerNorm}``, ``cls.predictions.bias``  ``mlm_head.{dense,norm,bias}``
(RoBERTa: ``lm_head.{dense,layer_norm,bias}``), untied ``*.decoder``      ``mlm_head.decoder.weight``
``cls.seq_relationship``                                                   ``nsp_head``
``classifier`` (RoBERTa: ``classifier.out_proj``)                          ``classifier``
"""

from __future__ import annotations

from bigmodel_fast.hf.rules import Rule
from bigmodel_fast.models.config import ModelConfig

__all__ = ["bert_rules", "bert_ignored", "bert_groups"]

WB = ("weight", "bias")


def _lin(ours: str, hf: str, group: str = "backbone") -> list[Rule]:
    return [Rule(f"{ours}.{s}", (f"{hf}.{s}",), "copy", group) for s in WB]


def bert_rules(cfg: ModelConfig, model_type: str, prefix: str, architecture: str) -> list[Rule]:
    """Every rule of a bmf bert model (pretraining and classifier tensors) for HF ``model_type`` ("bert" or
    "roberta") with HF key prefix ``prefix`` (``"bert."``, ``"roberta."`` or ``""``); ``architecture`` picks where a
    RoBERTa classifier keeps its pooler."""
    p, b = prefix, "backbone."
    rules = [Rule(f"{b}embeddings.{n}.weight", (f"{p}embeddings.{n}.weight",))
             for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    rules += _lin(f"{b}embeddings.norm", f"{p}embeddings.LayerNorm")
    for i in range(cfg.num_layers):
        h, o = f"{p}encoder.layer.{i}.", f"{b}layers.{i}."
        rules += [Rule(f"{o}attn.qkv.{s}", tuple(f"{h}attention.self.{n}.{s}" for n in ("query", "key", "value")),
                       "cat") for s in WB]
        rules += _lin(f"{o}attn.out", f"{h}attention.output.dense")
        rules += _lin(f"{o}ln1", f"{h}attention.output.LayerNorm")
        rules += _lin(f"{o}mlp.fc1", f"{h}intermediate.dense")
        rules += _lin(f"{o}mlp.fc2", f"{h}output.dense")
        rules += _lin(f"{o}ln2", f"{h}output.LayerNorm")
    roberta_cls = model_type == "roberta" and architecture.endswith("ForSequenceClassification")
    rules += _lin(f"{b}pooler", "classifier.dense" if roberta_cls else f"{p}pooler.dense", "pooler")
    if model_type == "roberta":
        rules += _lin("mlm_head.dense", "lm_head.dense", "mlm_head")
        rules += _lin("mlm_head.norm", "lm_head.layer_norm", "mlm_head")
        rules += [Rule("mlm_head.bias", ("lm_head.bias",), "copy", "mlm_head"),
                  Rule("mlm_head.decoder.weight", ("lm_head.decoder.weight",), "copy", "mlm_head")]
        rules += _lin("classifier", "classifier.out_proj", "classifier")
    else:
        rules += _lin("mlm_head.dense", "cls.predictions.transform.dense", "mlm_head")
        rules += _lin("mlm_head.norm", "cls.predictions.transform.LayerNorm", "mlm_head")
        rules += [Rule("mlm_head.bias", ("cls.predictions.bias",), "copy", "mlm_head"),
                  Rule("mlm_head.decoder.weight", ("cls.predictions.decoder.weight",), "copy", "mlm_head")]
        rules += _lin("nsp_head", "cls.seq_relationship", "nsp_head")
        rules += _lin("classifier", "classifier", "classifier")
    return rules


def bert_ignored(cfg: ModelConfig, model_type: str, prefix: str) -> set[str]:
    """HF tensors that carry nothing of their own: buffers, the decoder bias (= the head bias) and, when tied,
    the decoder weight (= the word embeddings)."""
    head = "lm_head" if model_type == "roberta" else "cls.predictions"
    out = {f"{prefix}embeddings.position_ids", f"{prefix}embeddings.token_type_ids", f"{head}.decoder.bias"}
    if cfg.tie_embeddings:
        out.add(f"{head}.decoder.weight")
    return out


def bert_groups(model_type: str, architecture: str) -> tuple[str, ...]:
    """The groups an HF ``architecture`` holds (what :func:`~bigmodel_fast.hf.export_hf.export_hf` writes)."""
    table = {"Model": ("backbone", "pooler"), "ForMaskedLM": ("backbone", "mlm_head"),
             "ForPreTraining": ("backbone", "pooler", "mlm_head", "nsp_head"),
             "ForSequenceClassification": ("backbone", "pooler", "classifier")}
    for suffix, groups in table.items():
        if architecture.endswith(suffix):
            return groups
    raise ValueError(f"architecture {architecture!r} is not a supported {model_type} architecture")
