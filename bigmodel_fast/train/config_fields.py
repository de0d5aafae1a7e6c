"""Config fields both trainers declare (``PretrainConfig``, ``FinetuneConfig``): one default, help and flag each.

Each function returns a fresh :func:`~bigmodel_fast.config_cli.setting`; ``bmf pretrain`` and ``bmf finetune``
get the same ``--seed``, ``--device``, ``--amp`` and ``--skip-nonfinite`` flags from them.
"""

from __future__ import annotations

from ..config_cli import setting
from ..runtime import AMP_MODES


def arch_choices() -> tuple[str, ...]:
    """The registered architectures (``--arch`` choices; read when a parser is built or a config is checked)."""
    from .. import models  # noqa: F401  (importing the model modules registers them)
    from ..models.registry import arch_names

    return arch_names()


def seed_field():
    return setting(0)


def device_field():
    return setting("auto", help="auto | cpu | cuda | cuda:N")


def amp_field():
    return setting("auto", choices=AMP_MODES,
                   help="autocast: auto = bf16 on CUDA, fp32 on CPU; bf16 also on CPU (fast with AMX / AVX512-BF16)")


def progress_field():
    # the flag is the hand-written --no-progress of every command (bigmodel_fast.cli)
    return setting(True, cli=False)


def skip_nonfinite_field():
    return setting(0, min=0, metavar="N",
                   help="skip up to N steps whose loss or gradient norm is NaN/inf (no update; the step and the lr "
                        "schedule still advance) instead of stopping at the first with exit code 1")
