"""Model export (TorchScript for LibTorch today; torch.export planned in issue 7)."""

from __future__ import annotations

from bigmodel_fast.export.torchscript import ExportError, export_torchscript, load_torchscript

__all__ = ["ExportError", "export_torchscript", "load_torchscript"]
