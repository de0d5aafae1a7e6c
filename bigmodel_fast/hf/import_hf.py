"""``bmf import-hf SRC --out CKPT``: a local Hugging Face BERT / RoBERTa / GPT-2 directory -> a bmf checkpoint.

Everything is read, checked and built in memory first (config, weight shapes against the config, every tensor
mapped, the tokenizer); only then is the checkpoint written, through :func:`bigmodel_fast.checkpoint.save_checkpoint`
(staging directory + publish), so a bad input leaves nothing at ``--out``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from bigmodel_fast.hf.bert import bert_ignored, bert_rules
from bigmodel_fast.hf.config_map import HFModelSpec, from_hf_config
from bigmodel_fast.hf.gpt2 import gpt2_ignored, gpt2_rules
from bigmodel_fast.hf.rules import from_hf, hf_shapes
from bigmodel_fast.hf.weights import find_weight_files, load_tensors, read_shapes

__all__ = ["import_hf", "build_from_hf", "HEAD_PREFIX"]

HEAD_PREFIX = {"bert": "bert.", "roberta": "roberta.", "gpt2": "transformer."}


def _normalise(name: str) -> str:
    """Old TF-converted BERT checkpoints name LayerNorm parameters gamma / beta."""
    if name.endswith("LayerNorm.gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith("LayerNorm.beta"):
        return name[: -len("beta")] + "bias"
    return name


def _prefix(model_type: str, names: set[str]) -> str:
    p = HEAD_PREFIX[model_type]
    return p if any(n.startswith(p) for n in names) else ""


def read_hf_config(src: Path) -> dict:
    f = src / "config.json"
    if not f.is_file():
        raise FileNotFoundError(f"{f}: missing; expected a Hugging Face model directory with config.json")
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{f}: invalid JSON ({e})") from None


def check_src(src: str | Path) -> Path:
    """``src`` as a Path; a one-line error when it is not a local directory (no hub downloads here)."""
    p = Path(src)
    if not p.is_dir():
        raise FileNotFoundError(f"{src}: not a local directory; download the model first (e.g. "
                                f"`huggingface-cli download <model> --local-dir DIR`) and pass the directory")
    return p


def build_from_hf(src: str | Path) -> tuple[torch.nn.Module, HFModelSpec, dict, dict]:
    """Read the HF directory ``src`` into a bmf model. Returns ``(model, spec, hf_config, report)``; ``report``
    lists the weight files, the loaded tensor count and the head ``fresh`` groups that were not in the checkpoint
    (freshly initialised)."""
    from bigmodel_fast.models import registry

    src = check_src(src)
    hf = read_hf_config(src)
    files = find_weight_files(src)
    bins: dict = {}  # pytorch_model.bin files, loaded once for shapes and tensors
    shapes = {_normalise(k): v for k, v in read_shapes(files, bins).items()}
    has_cls = "classifier.weight" in shapes or "classifier.out_proj.weight" in shapes
    spec = from_hf_config(hf, str(src / "config.json"), has_classifier=has_cls)
    cfg = spec.config
    prefix = _prefix(spec.model_type, set(shapes))
    if spec.model_type == "gpt2":
        rules, ignored = gpt2_rules(cfg, prefix), gpt2_ignored(cfg, prefix)
    else:
        rules = bert_rules(cfg, spec.model_type, prefix, spec.architecture)
        ignored = bert_ignored(cfg, spec.model_type, prefix)
    torch.manual_seed(0)  # fresh heads are reproducible
    model = registry.build_model(cfg, registry.task_of_kind(spec.kind))
    own = model.state_dict()
    rules = [r for r in rules if r.ours in own]
    covered = {r.ours for r in rules}
    uncovered = sorted(k for k in own if k not in covered)  # e.g. RoBERTa has no NSP head: always fresh
    fresh = {k.split(".")[0] for k in uncovered}
    used, take = set(), []
    for rule in rules:
        present = [h in shapes for h in rule.hf]
        if not any(present):
            if rule.group == "backbone":
                raise ValueError(f"{files[0]}: tensor {rule.hf[0]!r} is missing (needed for {rule.ours}; "
                                 f"model_type {spec.model_type}, {cfg.num_layers} layers in config.json)")
            fresh.add(rule.group)
            continue
        if not all(present):
            missing = [h for h, ok in zip(rule.hf, present) if not ok]
            raise ValueError(f"{files[0]}: tensor {missing[0]!r} is missing (needed with {rule.hf[0]!r})")
        for h, want in zip(rule.hf, hf_shapes(rule, tuple(own[rule.ours].shape))):
            got, f = shapes[h]
            if tuple(got) != tuple(want):
                raise ValueError(f"{f}: tensor {h!r} has shape {list(got)} but {src / 'config.json'} needs "
                                 f"{list(want)}")
        used.update(rule.hf)
        take.append(rule)
    partial = sorted(g for g in fresh if any(r.group == g for r in take))
    if partial:
        raise ValueError(f"{files[0]}: head {partial[0]!r} is only partly in the checkpoint")
    unused = sorted(set(shapes) - used - ignored)
    if unused:
        raise ValueError(f"{shapes[unused[0]][1]}: tensor {unused[0]!r} (and {len(unused) - 1} more) has no place "
                         f"in a bmf {cfg.arch} {spec.kind} model of architecture {spec.architecture}")
    raw = {_normalise(k): v for k, v in load_tensors(files, bins=bins).items()}
    state = {r.ours: from_hf(r, [raw[h] for h in r.hf]) for r in take}
    del raw
    result = model.load_state_dict(state, strict=False)
    left = sorted(set(result.missing_keys) - {r.ours for r in rules if r.group in fresh} - set(uncovered))
    if left or result.unexpected_keys:
        raise ValueError(f"{src}: internal mapping error (missing {left[:3]}, "
                         f"unexpected {result.unexpected_keys[:3]})")
    report = {"weights": [str(f) for f in files], "loaded_tensors": len(used), "fresh": sorted(fresh)}
    return model, spec, hf, report


def _tokenizer_file(src: Path, tmp: Path, cfg_vocab: int, use_hf_tokenizer: bool) -> tuple[Path, dict]:
    """The tokenizer file to store in the checkpoint (tokenizer.json), checked against the model's vocab size."""
    if use_hf_tokenizer:
        from bigmodel_fast.data.hf_tokenizer import HFTokenizer

        tok = HFTokenizer.from_hf_dir(src)
        size = tok.vocab_size
        path = Path(tok.save(tmp))
    else:  # tests without the tokenizer layer: store the directory's tokenizer.json as it is
        path = src / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing")
        from tokenizers import Tokenizer

        size = Tokenizer.from_file(str(path)).get_vocab_size()
    if size > cfg_vocab:  # named by its source file (``path`` may be the staging copy)
        named = next((src / n for n in ("tokenizer.json", "vocab.txt", "vocab.json") if (src / n).is_file()), path)
        raise ValueError(f"{named}: tokenizer has {size} ids but {src / 'config.json'} vocab_size is {cfg_vocab}")
    return path, {"file": path.name, "vocab_size": size}


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "meta.json").is_file())):
        raise ValueError(f"{out}: exists and is not a bmf checkpoint; pass a new directory for --out")


def import_hf(src: str | Path, out: str | Path, *, use_hf_tokenizer: bool = True) -> dict:
    """Import the HF directory ``src`` as the bmf checkpoint ``out``; returns the summary (printed as JSON by
    ``bmf import-hf``): checkpoint, kind, model type, architecture, parameters, fresh heads, seconds.

    ``use_hf_tokenizer=False`` (tests only) stores ``src/tokenizer.json`` without the tokenizer layer.
    """
    from bigmodel_fast.checkpoint import save_checkpoint

    t0 = time.perf_counter()
    out = Path(out)
    _check_out(out)
    model, spec, hf, report = build_from_hf(src)
    src = Path(src)
    meta = {"kind": spec.kind, "step": 0, "hf_model_type": spec.model_type, "hf_architecture": spec.architecture,
            "hf_config": hf, "imported_from": str(src.resolve()), "fresh_heads": report["fresh"]}
    if spec.kind == "classifier":  # predict / export read max_len: every position the model has (no silent cut)
        meta["max_len"] = spec.config.max_position - spec.config.position_offset
    with tempfile.TemporaryDirectory(prefix="bmf-import-") as tmp:
        tok_file, tok_info = _tokenizer_file(src, Path(tmp), spec.config.vocab_size, use_hf_tokenizer)
        save_checkpoint(out, model, spec.config.to_dict(), tok_file, meta)
    fresh = report["fresh"]
    return {"checkpoint": str(out), "kind": spec.kind, "model_type": spec.model_type,
            "architecture": spec.architecture, "arch": spec.config.arch,
            "parameters": sum(p.numel() for p in model.parameters()), "loaded_tensors": report["loaded_tensors"],
            "weights": report["weights"], "fresh_heads": fresh, "tokenizer": tok_info,
            "note": (f"not in the checkpoint, freshly initialised: {', '.join(fresh)}" if fresh else
                     "every tensor of the model came from the checkpoint"),
            "seconds": round(time.perf_counter() - t0, 3)}
