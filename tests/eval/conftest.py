"""Fixtures for predict/evaluate tests: a TorchScript bundle of the tiny classifier and damaged copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tiny_classifier, tmp_path_factory) -> Path:
    from bigmodel_fast.export.bundle import export_bundle

    return export_bundle(tiny_classifier, tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="session")
def nan_classifier(tiny_classifier, tmp_path_factory) -> Path:
    """A copy of the tiny classifier whose weights are all NaN (its logits, and so its probabilities, are NaN)."""
    import torch
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("nan") / "checkpoint"
    shutil.copytree(tiny_classifier, out)
    weights = load_file(str(out / "model.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
              str(out / "model.safetensors"))
    return reseal_manifest(out)


@pytest.fixture
def reseal():
    return reseal_manifest


def reseal_manifest(model_dir: Path) -> Path:
    """Re-write the manifest of an edited copy, if it has one, so the edit is what a loader sees (not a hash
    mismatch): the copy stands for a model that bmf wrote that way."""
    from bigmodel_fast.fsio import MANIFEST, write_manifest

    if (model_dir / MANIFEST).is_file():
        write_manifest(model_dir)
    return model_dir
