"""Text in, entities with character offsets out: a token classifier from a checkpoint or an exported bundle.

``TokenPredictor(path).predict(texts)`` gives one record per text, ``{"entities": [{"type", "start", "end",
"text"}, ...]}``: ``start``/``end`` are code-point offsets into the text (half-open, Python slicing), ``text`` is
``text[start:end]``. The text is split into words by :func:`bigmodel_fast.data.words.split_words`, the words are
tagged (:mod:`bigmodel_fast.data.token_inputs`), and the tags are read as entities the way ``seqeval``'s default
mode reads them (:func:`bigmodel_fast.eval.entity_metrics.entities`). ``bmf_runner`` prints the same records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .. import checkpoint as ckpt
from ..data.token_inputs import encode_sentences, window_overlap_of, word_logits
from ..data.tokenizer_base import load_tokenizer
from ..data.words import split_words
from ..export.bundle import BUNDLE_JSON, load_bundle_model
from ..inference import predict_token_logits
from ..runtime import pick_device
from .entity_metrics import entities

__all__ = ["TokenPredictor", "is_token_model", "spans_to_entities"]

KIND = "token_classifier"  # meta.json kind of token-classifier checkpoints (models.registry.TASKS)


def is_token_model(path: str | Path) -> bool:
    """True when ``path`` is a token-classifier checkpoint (meta.json kind) or bundle (bundle.json task "token");
    anything unreadable is False (the loaders report it)."""
    from ..jsonio import read_json

    path = Path(path)
    if path.is_file():
        path = path.parent
    try:
        if (path / BUNDLE_JSON).is_file():
            return read_json(path / BUNDLE_JSON, "bundle description").get("task") == "token"
        return ckpt.read_meta(path)[1].get("kind") == KIND
    except Exception:  # noqa: BLE001 -- only a hint; loading names what is wrong
        return False


def spans_to_entities(text: str, spans: Sequence[tuple[int, int]], tags: Sequence[str]) -> list[dict]:
    """Entities of one text from its word ``spans`` and their predicted ``tags`` (seqeval default reading)."""
    out = []
    for _, typ, first, last in entities([list(tags)], "default"):
        start, end = spans[first][0], spans[last][1]
        out.append({"type": typ, "start": start, "end": end, "text": text[start:end]})
    return out


class TokenPredictor:
    """A token classifier loaded from a checkpoint directory (meta.json kind ``token_classifier``) or a bundle
    (bundle.json task ``token``); ``labels`` are its tags in logit order."""

    def __init__(self, path: str | Path, device: str = "auto"):
        from .predict import load_error

        path = Path(path)
        if path.is_file() and (path.parent / BUNDLE_JSON).is_file():
            path = path.parent
        self.path, self.device = path, pick_device(device)
        try:
            if (path / BUNDLE_JSON).is_file():
                self.model, info = load_bundle_model(path, device=str(self.device))
                self.device = torch.device(info["device"])
                if info.get("task") != "token":
                    raise ValueError(f"{path}: a {info.get('task')!r} bundle is not a token classifier")
                self.labels, self.max_len = list(info["labels"]), int(info["max_len"])
                self.overlap = window_overlap_of(info)
                self.kind = f"bundle:{info['format']}"
            else:
                self.model, cfg, meta = ckpt.load_model(path, KIND)
                self.model.to(self.device).eval()
                self.labels = list(cfg.label_names) or [str(i) for i in range(cfg.num_labels)]
                self.max_len, self.overlap = int(meta.get("max_len", 128)), window_overlap_of(meta)
                self.kind = "checkpoint"
            self.tokenizer = load_tokenizer(path)
        except Exception as e:  # noqa: BLE001 -- a damaged model file may fail anywhere inside torch
            raise load_error(path, e) from e

    def word_logits(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[torch.Tensor]:
        """Per sentence (a list of words), its (words, C) logits."""
        windows = encode_sentences(self.tokenizer, sentences, self.max_len, self.overlap)
        logits = predict_token_logits(self.model, windows.seqs, self.tokenizer.pad_id, batch_size, self.device,
                                      amp="off") if windows.seqs else []
        out = word_logits(windows, logits)
        return [x if x.numel() else torch.empty(0, len(self.labels)) for x in out]

    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[list[str]]:
        """Per sentence, one predicted tag per word."""
        return [[self.labels[i] for i in z.argmax(-1).tolist()] for z in self.word_logits(sentences, batch_size)]

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[dict]:
        """One ``{"entities": [...]}`` record per text (module docstring)."""
        spans = [split_words(t) for t in texts]
        words = [[t[a:b] for a, b in s] for t, s in zip(texts, spans)]
        tags = self.tag(words, batch_size)
        return [{"entities": spans_to_entities(t, s, g)} for t, s, g in zip(texts, spans, tags)]
