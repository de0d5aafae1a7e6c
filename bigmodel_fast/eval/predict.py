"""Text in, label and probabilities out — from a classifier checkpoint or an exported bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..data.classification import encode_for_classifier
from ..data.tokenizer import Tokenizer
from ..export.bundle import BUNDLE_JSON, load_bundle_model
from ..train import checkpoint as ckpt
from ..train.common import pick_device
from ..train.finetune import predict_logits


class Predictor:
    """Loads a fine-tuned classifier from a checkpoint directory (``config.json`` + ``model.safetensors``) or an
    exported bundle directory (``bundle.json`` + TorchScript ``model.pt`` or AOTInductor ``model.pt2``); both
    tokenize the same way."""

    def __init__(self, path: str | Path, device: str = "auto"):
        path = Path(path)
        if path.is_file() and (path.parent / BUNDLE_JSON).is_file():
            path = path.parent  # the model file of a bundle
        self.path, self.device = path, pick_device(device)
        if (path / BUNDLE_JSON).is_file():
            self.model, info = load_bundle_model(path, device=str(self.device))
            self.device = torch.device(info["device"])  # an AOTInductor bundle runs on CPU whatever was asked
            if info.get("task", "classify") != "classify":
                raise ValueError(f"{path}: a {info['task']!r} bundle has no labels to predict; "
                                 f"expected a classifier bundle (`bmf export` of a fine-tuned checkpoint)")
            self.labels, self.max_len = info["labels"], int(info["max_len"])
            self.kind = f"bundle:{info['format']}"
        else:
            self.model, cfg, meta = ckpt.load_model(path, "classifier")
            self.model.to(self.device).eval()
            self.labels, self.max_len = list(cfg.label_names), int(meta.get("max_len", 128))
            self.kind = "checkpoint"
        self.tokenizer = Tokenizer(path / ckpt.TOKENIZER)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Class probabilities (N, C) float32, in the order of ``self.labels``."""
        seqs = encode_for_classifier(self.tokenizer, texts, self.max_len)
        if not seqs:
            return torch.empty(0, len(self.labels))
        logits = predict_logits(self.model, seqs, self.tokenizer.pad_id, batch_size, self.device, amp="off")
        return logits.float().softmax(-1)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[dict]:
        """One ``{"label", "probabilities": {label: p}}`` per text."""
        probs = self.predict_proba(texts, batch_size)
        return [{"label": self.labels[int(p.argmax())],
                 "probabilities": {name: round(float(v), 6) for name, v in zip(self.labels, p)}} for p in probs]
