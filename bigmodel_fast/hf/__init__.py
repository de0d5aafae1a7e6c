"""Hugging Face interop: import local HF BERT / RoBERTa / GPT-2 checkpoints into bmf checkpoints and write bmf
checkpoints back in the HF layout.

* :mod:`.config_map`: HF ``config.json`` <-> :class:`~bigmodel_fast.models.config.ModelConfig` (errors for fields
  our models cannot express);
* :mod:`.weights`: reading ``model.safetensors`` (single or sharded + index) and ``pytorch_model.bin``
  (``torch.load`` with ``weights_only=True`` only);
* :mod:`.bert`, :mod:`.gpt2`: tensor name/shape maps in both directions;
* :mod:`.import_hf` (``bmf import-hf``) and :mod:`.export_hf` (``bmf export-hf``).
"""

from __future__ import annotations

from bigmodel_fast.hf.export_hf import export_hf
from bigmodel_fast.hf.import_hf import import_hf

__all__ = ["export_hf", "import_hf"]
