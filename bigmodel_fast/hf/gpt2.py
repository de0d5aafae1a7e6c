"""GPT-2 <-> bmf ``gpt`` tensor names (:class:`~bigmodel_fast.hf.rules.Rule` lists).

HF (``p`` = ``transformer.`` or empty for a bare ``GPT2Model``)   bmf (``backbone.`` prefix)
``p wte``, ``p wpe``                                            ``embeddings.word_embeddings``, ``position_embeddings``
``p h.N.ln_1`` / ``ln_2``                                        ``layers.N.ln1`` / ``ln2``
``p h.N.attn.c_attn`` (Conv1D (E, 3E): q | k | v)                 ``layers.N.attn.qkv`` (transposed)
``p h.N.attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj`` (Conv1D)      ``layers.N.attn.out``, ``mlp.fc1``, ``mlp.fc2``
``p ln_f``                                                       ``final_norm``
``lm_head.weight`` (only when untied)                            ``lm_head.weight``
"""

from __future__ import annotations

from bigmodel_fast.hf.rules import Rule
from bigmodel_fast.models.config import ModelConfig

__all__ = ["gpt2_rules", "gpt2_ignored", "gpt2_groups"]


def gpt2_rules(cfg: ModelConfig, prefix: str) -> list[Rule]:
    """Every rule of a bmf gpt model for HF GPT-2 keys with prefix ``prefix`` (``"transformer."`` or ``""``)."""
    p, b = prefix, "backbone."
    rules = [Rule(f"{b}embeddings.word_embeddings.weight", (f"{p}wte.weight",)),
             Rule(f"{b}embeddings.position_embeddings.weight", (f"{p}wpe.weight",))]
    for i in range(cfg.num_layers):
        h, o = f"{p}h.{i}.", f"{b}layers.{i}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            rules += [Rule(f"{o}{ours}.{s}", (f"{h}{theirs}.{s}",)) for s in ("weight", "bias")]
        for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.out", "attn.c_proj"), ("mlp.fc1", "mlp.c_fc"),
                             ("mlp.fc2", "mlp.c_proj")):
            rules += [Rule(f"{o}{ours}.weight", (f"{h}{theirs}.weight",), "t"),
                      Rule(f"{o}{ours}.bias", (f"{h}{theirs}.bias",))]
    rules += [Rule(f"{b}final_norm.{s}", (f"{p}ln_f.{s}",)) for s in ("weight", "bias")]
    rules.append(Rule("lm_head.weight", ("lm_head.weight",), "copy", "lm_head"))
    return rules


def gpt2_ignored(cfg: ModelConfig, prefix: str) -> set[str]:
    """HF tensors that carry nothing: the causal-mask buffers of old checkpoints and, when tied, ``lm_head``."""
    out = set()
    for i in range(cfg.num_layers):
        out |= {f"{prefix}h.{i}.attn.bias", f"{prefix}h.{i}.attn.masked_bias"}
    if cfg.tie_embeddings:
        out.add("lm_head.weight")
    return out


def gpt2_groups(architecture: str) -> tuple[str, ...]:
    """The groups an HF GPT-2 ``architecture`` holds."""
    if architecture == "GPT2Model":
        return ("backbone",)
    if architecture == "GPT2LMHeadModel":
        return ("backbone", "lm_head")
    raise ValueError(f"architecture {architecture!r} is not a supported gpt2 architecture")
