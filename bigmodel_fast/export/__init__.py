"""Model export for C++ deployment: TorchScript (``model.pt``) and torch.export + AOTInductor (``model.pt2``)
bundles, the registry of what exports (:mod:`.targets`), and the C++ runner build (:mod:`.runner`)."""

from __future__ import annotations

from bigmodel_fast.export.torchscript import ExportError, export_torchscript, load_torchscript

__all__ = ["ExportError", "export_torchscript", "load_torchscript"]
