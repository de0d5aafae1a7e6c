"""``bmf export-hf CKPT --out DIR``: a bmf checkpoint -> a Hugging Face directory (config.json,
model.safetensors, tokenizer files) that ``transformers.AutoModel*.from_pretrained(DIR)`` loads.

Imported checkpoints go back to their HF model type and architecture (meta.json ``hf_model_type`` /
``hf_architecture``, the imported config supplying the fields bmf does not model); bmf-native ones become
``BertForPreTraining`` / ``BertForSequenceClassification`` (arch bert) or ``GPT2LMHeadModel`` (arch gpt). The
directory is written in a staging directory and published with :mod:`bigmodel_fast.fsio`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from bigmodel_fast import fsio
from bigmodel_fast.hf.bert import bert_groups, bert_rules
from bigmodel_fast.hf.config_map import to_hf_config
from bigmodel_fast.hf.gpt2 import gpt2_groups, gpt2_rules
from bigmodel_fast.hf.import_hf import HEAD_PREFIX
from bigmodel_fast.hf.rules import to_hf

__all__ = ["export_hf", "hf_state_dict", "target_of"]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "tokenizer.model")


def target_of(arch: str, kind: str, meta: dict) -> tuple[str, str]:
    """(HF model type, HF architecture) a checkpoint is written as."""
    model_type = meta.get("hf_model_type") or {"bert": "bert", "gpt": "gpt2"}.get(arch)
    if model_type is None:
        raise ValueError(f"arch {arch!r} has no Hugging Face counterpart (export-hf writes bert, roberta, gpt2)")
    imported = meta.get("hf_architecture")
    if kind == "classifier":
        if model_type == "gpt2":
            raise ValueError("export-hf of a gpt classifier is not supported (GPT2ForSequenceClassification's "
                             "head has no bias and pools by pad id)")
        return model_type, {"bert": "BertForSequenceClassification",
                            "roberta": "RobertaForSequenceClassification"}[model_type]
    if imported and not imported.endswith("ForSequenceClassification"):
        return model_type, imported
    return model_type, {"bert": "BertForPreTraining", "roberta": "RobertaForMaskedLM",
                        "gpt2": "GPT2LMHeadModel"}[model_type]


def hf_state_dict(model: torch.nn.Module, cfg, model_type: str, architecture: str) -> dict[str, torch.Tensor]:
    """The HF tensors of ``model`` (a bmf model of ``cfg``) as ``model_type`` / ``architecture``."""
    bare = architecture.endswith("Model") and not architecture.endswith("LMHeadModel")
    prefix = "" if bare else HEAD_PREFIX[model_type]
    if model_type == "gpt2":
        rules, groups = gpt2_rules(cfg, prefix), gpt2_groups(architecture)
    else:
        rules, groups = bert_rules(cfg, model_type, prefix, architecture), bert_groups(model_type, architecture)
    own = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for rule in rules:
        if rule.group in groups and rule.ours in own:
            for name, t in zip(rule.hf, to_hf(rule, own[rule.ours])):
                out[name] = t.clone().contiguous()
    if model_type != "gpt2" and "mlm_head" in groups and not cfg.tie_embeddings:  # HF then saves the tied bias twice
        head = "lm_head" if model_type == "roberta" else "cls.predictions"
        out[f"{head}.decoder.bias"] = out[f"{head}.bias"].clone()
    return out


def export_hf(ckpt: str | Path, out: str | Path) -> dict:
    """Write the bmf checkpoint ``ckpt`` as the HF directory ``out`` (must not exist or be empty); returns the
    summary printed by ``bmf export-hf``."""
    from bigmodel_fast.checkpoint import load_model, read_meta

    t0 = time.perf_counter()
    ckpt, out = Path(ckpt), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: exists and is not empty; pass a new directory for --out")
    _, meta = read_meta(ckpt)
    kind = meta.get("kind")
    if kind not in ("pretrain", "classifier"):
        raise ValueError(f"{ckpt / 'meta.json'}: kind {kind!r} cannot be exported (pretrain or classifier)")
    model, cfg, meta = load_model(ckpt, kind)
    model_type, architecture = target_of(cfg.arch, kind, meta)
    base = meta.get("hf_config") if meta.get("hf_model_type") == model_type else None
    hf_cfg = to_hf_config(cfg, model_type, architecture, base)
    tensors = hf_state_dict(model, cfg, model_type, architecture)
    tmp = fsio.staging_dir(out)
    try:
        (tmp / "config.json").write_text(json.dumps(hf_cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        copied = []
        for name in TOKENIZER_FILES:
            if (ckpt / name).is_file():
                shutil.copyfile(ckpt / name, tmp / name)
                copied.append(name)
        for f in tmp.iterdir():
            fsio.fsync_file(f)
        fsio.publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "model_type": model_type, "architecture": architecture, "tensors": len(tensors),
            "tokenizer_files": copied, "seconds": round(time.perf_counter() - t0, 3)}
