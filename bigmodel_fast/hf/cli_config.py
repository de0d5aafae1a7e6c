"""Settings of ``bmf import-hf`` / ``bmf export-hf`` (each field's metadata is its flag:
:mod:`bigmodel_fast.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass

from bigmodel_fast.config_cli import check_fields, setting

__all__ = ["ExportHFConfig", "ImportHFConfig"]


@dataclass
class ImportHFConfig:
    """``bmf import-hf SRC --out CKPT``."""

    src: str = setting(positional=True, metavar="SRC",
                       help="local Hugging Face model directory (config.json, weights, tokenizer); download it "
                            "first, e.g. with huggingface-cli")
    out: str = setting(help="the bmf checkpoint directory to write")

    def __post_init__(self):
        check_fields(self)


@dataclass
class ExportHFConfig:
    """``bmf export-hf CKPT --out DIR``."""

    checkpoint: str = setting(positional=True, metavar="CKPT", help="bmf pretrain or classifier checkpoint")
    out: str = setting(help="new directory for the Hugging Face files (config.json, model.safetensors, tokenizer)")

    def __post_init__(self):
        check_fields(self)
