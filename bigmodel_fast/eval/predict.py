"""Text in, label and probabilities out — from a classifier checkpoint or an exported bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from .. import checkpoint as ckpt
from ..config_cli import check_fields, positive_int, setting
from ..data.lines import DEFAULT_MAX_LINE_BYTES
from ..data.long_text import LongTextEncoding, encode_long, long_text_settings
from ..data.tokenizer_base import load_tokenizer
from ..export.bundle import BUNDLE_JSON, load_bundle_model
from ..inference import predict_logits_long
from ..runtime import pick_device
from .outputs import OutputSpec, output_records, scores

DEFAULT_BATCH_SIZE = 64  # texts per model call: bmf predict / bmf evaluate --batch-size, Predictor, predict_stream
INPUT_FORMATS = ("auto", "lines", "jsonl", "csv")  # bmf predict --format (bigmodel_fast.eval.inputs)
DEFAULT_DEVICE = "auto"  # bmf predict / bmf evaluate --device, Predictor (:func:`bigmodel_fast.runtime.pick_device`)


def batch_size_field():
    """``--batch-size`` of ``bmf predict`` and ``bmf evaluate``: refused by the parser (exit 2) when < 1."""
    return setting(DEFAULT_BATCH_SIZE, type=positive_int, min=1, help="texts per model call")


def device_field():
    return setting(DEFAULT_DEVICE, help="auto | cpu | cuda | cuda:N")


@dataclass
class PredictConfig:
    """Settings of ``bmf predict`` (each field's metadata is also its flag: :mod:`bigmodel_fast.config_cli`)."""

    model: str = setting(help="classifier checkpoint or exported bundle directory")
    text: list[str] = setting(default_factory=list, append=True, help="a text (repeatable)")
    input: str | None = setting(None, help="a file of texts (see --format), - for stdin; read and answered in "
                                "batches (a batch is answered when full, or at once when the input pauses)")
    format: str = setting("auto", choices=INPUT_FORMATS,
                          help="--input format: lines (one text per line), jsonl (one JSON object per line), csv "
                               "(header row); auto: .jsonl/.ndjson -> jsonl, .csv -> csv, else lines")
    text_field: str = setting("text", help="jsonl / csv: the field holding the text; the other fields (e.g. an id) "
                                           "are copied to the output record")
    echo: bool = setting(False, help="write the text into each output record too")
    batch_size: int = batch_size_field()
    max_line_bytes: int = setting(
        DEFAULT_MAX_LINE_BYTES, type=positive_int, min=1,
        help=f"an input line longer than this keeps its first MAX_LINE_BYTES bytes (cut back to a whole UTF-8 "
             f"character) and the rest is skipped, as bmf_runner does; default {DEFAULT_MAX_LINE_BYTES} (1 MiB)")
    device: str = device_field()

    def __post_init__(self):
        check_fields(self)


class ModelLoadError(ValueError):
    """A checkpoint or bundle given to ``bmf predict`` / ``bmf evaluate`` could not be loaded."""


class Predictor:
    """Loads a fine-tuned classifier from a checkpoint directory (``config.json`` + ``model.safetensors``) or an
    exported bundle directory (``bundle.json`` + TorchScript ``model.pt`` or AOTInductor ``model.pt2``); both
    tokenize the same way."""

    def __init__(self, path: str | Path, device: str = DEFAULT_DEVICE):
        path = Path(path)
        if path.is_file() and (path.parent / BUNDLE_JSON).is_file():
            path = path.parent  # the model file of a bundle
        self.path, self.device = path, pick_device(device)
        try:
            if (path / BUNDLE_JSON).is_file():
                self._load_bundle(path)
            else:
                self._load_checkpoint(path)
            self.tokenizer = load_tokenizer(path)  # the checkpoint's or bundle's tokenizer.model / .json
        except Exception as e:  # noqa: BLE001 -- a damaged model file may fail anywhere inside torch/safetensors
            raise load_error(path, e) from e

    def _load_bundle(self, path: Path) -> None:
        self.model, info = load_bundle_model(path, device=str(self.device))
        self.device = torch.device(info["device"])  # an AOTInductor bundle runs on CPU whatever was asked
        if info.get("task", "classify") != "classify":
            raise ValueError(f"{path}: a {info['task']!r} bundle has no labels to predict; "
                             f"expected a classifier bundle (`bmf export` of a fine-tuned checkpoint)")
        self.labels, self.max_len = info["labels"], int(info["max_len"])
        self.spec = OutputSpec.from_meta(info.get("problem_type"), self.labels, info, str(path / BUNDLE_JSON))
        self.long_text = long_text_settings(info, str(path / BUNDLE_JSON))
        self.kind = f"bundle:{info['format']}"

    def _load_checkpoint(self, path: Path) -> None:
        self.model, cfg, meta = ckpt.load_model(path, "classifier")
        self.model.to(self.device).eval()
        self.labels = list(cfg.label_names) or [str(i) for i in range(cfg.num_labels)]
        self.max_len = int(meta.get("max_len", 128))
        self.spec = OutputSpec.from_meta(cfg.problem_type, self.labels, meta, str(path / "meta.json"))
        self.long_text = long_text_settings(meta, str(path / "meta.json"))
        self.kind = "checkpoint"

    def encode_windows(self, texts: Sequence[str]) -> LongTextEncoding:
        """Model inputs of ``texts`` under the model's ``long_text`` setting (meta.json / bundle.json; truncate when
        absent): ``[CLS] ids [SEP]`` windows of at most ``max_len`` ids and their owner text
        (:func:`~bigmodel_fast.data.long_text.encode_long`). Texts are tokenized in groups of at most
        :data:`ENCODE_GROUP_CHARS` characters (a long text alone), each group cut to windows before the next is
        tokenized, so a batch of long lines never holds all their ids at once."""
        mode, stride = self.long_text
        seqs: list[list[int]] = []
        owner: list[int] = []
        done = 0  # texts of the groups before
        for group in _groups(texts, ENCODE_GROUP_CHARS):
            enc = encode_long(self.tokenizer, group, self.max_len, mode, stride, count=False)
            owner += [done + o for o in enc.owner]
            seqs += enc.seqs
            done += len(group)
        return LongTextEncoding(seqs, owner)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The model inputs of :meth:`encode_windows` (one per text unless long_text is chunks)."""
        return self.encode_windows(texts).seqs

    def predict_logits(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
        """Logits (N, C) float32, one row per text: with long_text chunks the mean of its windows' logits."""
        enc = self.encode_windows(texts)
        if not enc.seqs:
            return torch.empty(0, len(self.labels))
        return predict_logits_long(self.model, enc.seqs, enc.owner, len(texts), self.tokenizer.pad_id, batch_size,
                                   self.device, amp="off")

    def predict_proba(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
        """(N, C) float32 in the order of ``self.labels``: class probabilities (single_label: softmax), per-label
        probabilities (multi_label: sigmoid) or the predicted values (regression)."""
        return scores(self.predict_logits(texts, batch_size), self.spec.problem_type)

    def predict(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[dict]:
        """One record per text (:mod:`bigmodel_fast.eval.outputs`): ``{"label", "probabilities": {label: p}}`` for
        single_label, ``{"labels", "probabilities"}`` for multi_label, ``{"value"}`` for regression. When the
        model's output is not finite (NaN or inf logits, e.g. non-finite weights) the label (labels, value) is None
        and the probabilities are NaN (null in JSON)."""
        return output_records(self.predict_logits(texts, batch_size), self.spec)


ENCODE_GROUP_CHARS = 1 << 18  # 256 Ki characters: at most ~1 Mi token ids alive while a batch is tokenized


def _groups(texts: Sequence[str], max_chars: int) -> Iterator[list[str]]:
    """Consecutive runs of ``texts`` of at most ``max_chars`` characters in all (a longer text forms its own)."""
    group: list[str] = []
    size = 0
    for text in texts:
        if group and size + len(text) > max_chars:
            yield group
            group, size = [], 0
        group.append(text)
        size += len(text)
    if group:
        yield group


def load_error(path: Path, e: Exception) -> ValueError:
    """One-line error for a model that cannot be loaded; clean errors of the loaders pass through unchanged."""
    message = " ".join(str(e).split())
    if isinstance(e, (ValueError, FileNotFoundError)) and message == str(e) and str(path) in message:
        return e if isinstance(e, ValueError) else ModelLoadError(message)
    if len(message) > 300:
        message = message[:297] + "..."
    return ModelLoadError(f"{path}: cannot load the model ({type(e).__name__}: {message}); expected a classifier "
                          f"checkpoint or bundle written by bmf -- the files may be damaged, re-create them")
