"""Deployment bundles: everything a runner needs to go from raw text to an answer, in one directory::

    model.pt          TorchScript module (--format torchscript), or
    model.pt2         AOTInductor package (--format aoti)
    tokenizer.model   the checkpoint's tokenizer under its own name: SentencePiece tokenizer.model, or HF
                      tokenizer.json (bundle.json "tokenizer_file" names it; "special_ids" gives its role ids)
    bundle.json       format, task, model file, labels, max_len, special-token ids, how inputs are built
    manifest.json     size and SHA-256 of every file (:func:`bigmodel_fast.fsio.write_manifest`), written last

A bundle is exported into ``OUT.tmp-PID`` beside ``OUT`` and moved into place only when complete (a failed or
killed export leaves the previous bundle untouched), under a lock (``.OUT.lock``) so two exports never mix. Readers
(Python and ``bmf_runner``) verify the manifest before anything is loaded: a corrupted or half-written bundle is a
one-line error naming the file. The manifest catches corruption, not attacks: a bundle is a program (TorchScript
code, or an AOTInductor shared library that is dlopen()ed); only run bundles you built or trust.

Every bundle model has one signature, ``forward(input_ids (B, S) int64, attention_mask (B, S) bool) -> logits``:
(B, num_labels) for task ``classify`` (fine-tuned classifiers), (B, S, vocab_size) for task ``lm`` (GPT
pretraining checkpoints). Classifier inputs are ``[CLS] ids[:max_len-2] [SEP]`` (``ids[:max_len]`` for a tokenizer
without cls/sep, :func:`~bigmodel_fast.data.classification.encode_for_classifier`), right-padded with ``pad_id``;
LM inputs are the prompt ids with no special tokens. Which checkpoints export as what is decided in
:mod:`bigmodel_fast.export.targets` (where new architectures plug in). Exported models always run the reference
(non-Triton) ops. The C++ runner (``csrc/deploy``) reads the same ``bundle.json``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..config_cli import check_fields, setting
from ..fsio import (
    MANIFEST,
    clean_stale,
    publish_dir,
    read_manifest,
    recover_dir,
    sibling_lock,
    staging_dir,
    verify_manifest,
    write_manifest,
)
from ..jsonio import read_json, write_json
from .runner import DEFAULT_BUILD_DIR

BUNDLE_JSON, BUNDLE_MODEL, BUNDLE_TOKENIZER = "bundle.json", "model.pt", "tokenizer.model"
BUNDLE_MODEL_AOTI = "model.pt2"
BUNDLE_VERSION = 1
FORMATS = {"torchscript": BUNDLE_MODEL, "aoti": BUNDLE_MODEL_AOTI}
INPUT_POLICY = ("lines end at \\n, \\r\\n or \\r; a line keeps at most --max-line-bytes bytes (default 1 MiB), cut "
                "back to a whole UTF-8 character; invalid UTF-8 becomes U+FFFD per maximal ill-formed subpart "
                "(Python errors='replace')")


class BundleError(ValueError):
    """A bundle's model could not be loaded (damaged archive, wrong torch version, ...)."""


@dataclass
class ExportConfig:
    """Settings of ``bmf export`` (each field's metadata is also its flag: :mod:`bigmodel_fast.config_cli`);
    :func:`export_bundle`'s ``format`` default is this ``format``'s."""

    checkpoint: str | None = setting(None, help="fine-tuned classifier checkpoint, or GPT pretraining checkpoint (LM)")
    out: str | None = setting(None, help="bundle directory")
    format: str = setting("torchscript", choices=tuple(FORMATS),
                          help="torchscript: model.pt (torch.jit); aoti: model.pt2 (torch.export + AOTInductor)")
    build_runner: bool = setting(False, help="build the C++ runner bmf_runner with CMake")
    runner_dir: str = setting(DEFAULT_BUILD_DIR, help="CMake build directory of the runner")
    jobs: int = setting(0, help="parallel compile jobs for --build-runner (0: all cores)")

    def __post_init__(self):
        check_fields(self)


def export_bundle(checkpoint: str | Path, out: str | Path, *, format: str = ExportConfig.format) -> Path:
    """Export a checkpoint to a bundle directory; checks parity with the eager model.

    Args:
        checkpoint: a fine-tuned classifier checkpoint (task ``classify``) or a GPT pretraining checkpoint
            (task ``lm``).
        out: bundle directory: written beside it as ``OUT.tmp-PID`` and moved into place when complete, replacing
            a previous bundle as a whole (a non-empty directory that is not a bundle is refused).
        format: ``"torchscript"`` (``model.pt``, ``torch.jit.script``) or ``"aoti"`` (``model.pt2``,
            ``torch.export`` + AOTInductor; needs a C++ compiler).

    Raises:
        ValueError: unknown format, a checkpoint that does not export (e.g. a BERT pretraining checkpoint), an
            ``out`` that is not a bundle, or another export holding ``out`` (:class:`~bigmodel_fast.fsio.LockedError`).
        ExportError: export or its parity check failed.
    """
    from .. import checkpoint as ckpt
    from .targets import load_export_target

    if format not in FORMATS:
        raise ValueError(f"export format {format!r} is not supported; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    _check_replaceable(out)
    target = load_export_target(checkpoint)
    with sibling_lock(out, "bundle directory"):
        recover_dir(out)
        clean_stale(out)
        tmp = staging_dir(out)
        try:
            _write_bundle(target, ckpt.tokenizer_path(checkpoint), tmp, format)
            write_manifest(tmp)
            publish_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def _check_replaceable(out: Path) -> None:
    """``out`` is replaced as a whole: refuse a file, or a non-empty directory that is not a bundle."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory; expected a bundle directory to (re)write")
    if out.is_dir() and any(out.iterdir()) and not (out / BUNDLE_JSON).is_file():
        raise ValueError(f"{out}: a non-empty directory that is not a bundle (no {BUNDLE_JSON}); export replaces "
                         f"the whole directory, so give a new or bundle path")


def _write_bundle(target, tokenizer_file: Path, out: Path, format: str) -> None:
    """Model, tokenizer and bundle.json of ``target`` into the (staging) directory ``out``."""
    from .. import checkpoint as ckpt
    from ..data.classification import classifier_wrap
    from ..data.tokenizer_base import load_tokenizer

    cfg = target.cfg
    model_file = out / FORMATS[format]
    if format == "torchscript":
        from .torchscript import export_torchscript

        export_torchscript(target.module, model_file)
    else:
        from .aoti import export_aoti

        export_aoti(target.module, model_file)
    tok_name = ckpt.tokenizer_name(tokenizer_file)  # tokenizer.model or tokenizer.json, kept under its own name
    shutil.copyfile(tokenizer_file, out / tok_name)
    tok = load_tokenizer(out / tok_name)
    # a tokenizer.json may have fewer ids than the model's (padded) embedding rows, as imported HF models often do
    smaller_ok = tok_name == "tokenizer.json" and tok.vocab_size < cfg.vocab_size
    if tok.vocab_size != cfg.vocab_size and not smaller_ok:
        raise ValueError(f"{tokenizer_file}: tokenizer has {tok.vocab_size} pieces but the model config says "
                         f"vocab_size {cfg.vocab_size}")
    if target.task == "classify":
        inputs = classify_inputs(bool(classifier_wrap(tok)[0]), target.inference.get("long_text", {}))
    elif target.task == "token":
        from ..data.words import boundary_id

        target.inference["token"]["boundary_id"] = boundary_id(tok)
        inputs = token_inputs(bool(classifier_wrap(tok)[0]))
    else:
        inputs = "prompt ids (no special tokens; empty prompt -> [<s>]), last max_len ids; attention_mask all True"
    write_json(out / BUNDLE_JSON, {
        "bundle_version": BUNDLE_VERSION, "format": format, "task": target.task, "bmf_version": __version__,
        "arch": cfg.arch, "model": model_file.name, "tokenizer": tok_name, "tokenizer_file": tok_name,
        "labels": list(target.labels), "max_len": int(target.max_len), "vocab_size": cfg.vocab_size,
        "input": inputs, "output": OUTPUTS[target.task],
        "text_policy": INPUT_POLICY,
        "special_ids": tok.special_ids(),  # {"pad", "unk", "cls", "sep", "mask", "bos", "eos"}: id or null
        **target.inference,  # classify: problem_type, long_text {mode, stride}, thresholds (multi_label)
    })


OUTPUTS = {"classify": "logits (B, num_labels)", "lm": "logits (B, S, V)", "token": "logits (B, S, num_labels)"}


def token_inputs(wrap: bool) -> str:
    """bundle.json's "input" description of a token-classifier bundle."""
    frame = "[CLS] window [SEP]" if wrap else "window"
    return (f"text -> words (token.words rule) -> sub-token ids per word (leading token.boundary_id dropped, none -> "
            f"unk) -> windows of at most {'max_len-2' if wrap else 'max_len'} ids overlapping by token.overlap, "
            f"each {frame}, right-padded with pad_id; a word's tag is the argmax at its first sub-token in the window "
            f"where that position is farthest from an edge")


def classify_inputs(wrap: bool, long_text: dict) -> str:
    """bundle.json's "input" description of a classifier bundle (``wrap``: the tokenizer has cls and sep)."""
    body = {"truncate": "ids[:budget]", "head-tail": "ids[:budget//4] + ids[-(budget - budget//4):]",
            "chunks": "each window ids[k*stride : k*stride + budget] (last window ends at the text's end; logits "
                      "of a text's windows are averaged)"}[long_text.get("mode", "truncate")]
    budget = "max_len-2" if wrap else "max_len"
    seq = f"[CLS] {body} [SEP]" if wrap else body
    return f"{seq} with budget = {budget}, right-padded with pad_id; attention_mask True on real tokens"


def read_bundle(path: str | Path) -> dict:
    """``bundle.json`` of a bundle directory, checked for the files and fields a runner needs.

    Bundles written before ``format``/``task``/``model`` existed get the defaults torchscript/classify/model.pt.
    """
    path = Path(path)
    recover_dir(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a directory; expected a bundle directory written by `bmf export`")
    verify_manifest(path, hashes=True, required=True)  # before anything of the bundle is parsed or loaded
    info = read_json(path / BUNDLE_JSON, "bundle description (bundle.json, written by `bmf export`)")
    if not isinstance(info, dict):
        raise ValueError(f"{path / BUNDLE_JSON}: expected a JSON object; re-export with `bmf export`")
    for key in ("bundle_version", "labels", "max_len", "special_ids"):
        if key not in info:
            raise ValueError(f"{path / BUNDLE_JSON}: missing field {key!r}; re-export with `bmf export`")
    if info["bundle_version"] != BUNDLE_VERSION:
        raise ValueError(f"{path / BUNDLE_JSON}: bundle_version {info['bundle_version']} is not supported "
                         f"(expected {BUNDLE_VERSION}); re-export with this bmf version")
    info.setdefault("format", "torchscript")
    info.setdefault("task", "classify")
    if info["format"] not in FORMATS:
        raise ValueError(f"{path / BUNDLE_JSON}: format {info['format']!r} is not supported "
                         f"(expected one of {', '.join(FORMATS)})")
    info.setdefault("model", FORMATS[info["format"]])
    listed = read_manifest(path)["files"]
    info.setdefault("tokenizer_file", BUNDLE_TOKENIZER)  # bundles before HF tokenizers: tokenizer.model
    for name in (BUNDLE_JSON, info["model"], info["tokenizer_file"]):
        if not isinstance(name, str) or not (path / name).is_file():
            raise FileNotFoundError(f"{path}: missing {name}; expected a bundle written by `bmf export`")
        if name not in listed:
            raise ValueError(f"{path / str(name)}: not listed in {MANIFEST}; the bundle is damaged, re-export it")
    return info


def load_bundle_model(path: str | Path, device: str = "cpu"):
    """``(model, info)`` of a bundle directory: a callable ``model(input_ids, attention_mask) -> logits`` for
    either format (TorchScript module in eval mode, or the AOTInductor package, which runs on CPU only here).
    ``info["device"]`` is where the model runs and its inputs must go: ``device``, or ``"cpu"`` for AOTInductor.

    The manifest is verified first (:func:`read_bundle`); a model that still fails to load is a
    :class:`BundleError` (a ValueError) naming the file."""
    import torch

    path = Path(path)
    info = read_bundle(path)
    model_file = path / info["model"]
    try:
        if info["format"] == "aoti":
            from .aoti import load_aoti

            info["device"] = "cpu"  # exported from the CPU checkpoint and compiled for CPU
            return load_aoti(model_file), info
        info["device"] = str(device)
        from .torchscript import load_torchscript

        module, _ = load_torchscript(model_file, map_location=torch.device(device))
        return module.eval(), info
    except Exception as e:  # noqa: BLE001 -- torch.jit.load / aoti_load_package raise many kinds of errors
        message = " ".join(str(e).split())
        if len(message) > 300:
            message = message[:297] + "..."
        raise BundleError(f"{model_file}: cannot load the {info['format']} model ({type(e).__name__}: {message}); "
                          f"the bundle is damaged or was exported by another torch version, re-export it") from e
