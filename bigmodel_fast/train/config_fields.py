"""Config fields both trainers declare (``PretrainConfig``, ``FinetuneConfig``): one default, help and flag each.

Each function returns a fresh :func:`~bigmodel_fast.config_cli.setting`; ``bmf pretrain`` and ``bmf finetune``
get the same ``--seed``, ``--device``, ``--amp`` and ``--skip-nonfinite`` flags from them.
"""

from __future__ import annotations

from ..config_cli import setting
from ..runtime import AMP_MODES
from .parallel import PARALLEL_MODES
from .speed import COMPILE_MODES


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
                   help="autocast: auto = bf16 on CUDA, fp32 on CPU; bf16 also on CPU (fast with AMX / AVX512-BF16); "
                        "fp16 with a GradScaler (dynamic loss scaling; an overflowing step is skipped by the scaler)")


def progress_field():
    # the flag is the hand-written --no-progress of every command (bigmodel_fast.cli)
    return setting(True, cli=False)


def skip_nonfinite_field():
    return setting(0, min=0, metavar="N",
                   help="skip up to N steps whose loss or gradient norm is NaN/inf (no update; the step and the lr "
                        "schedule still advance) instead of stopping at the first with exit code 1")


def parallel_field():
    return setting("ddp", choices=PARALLEL_MODES,
                   help="under torchrun: ddp (DistributedDataParallel) or fsdp (FSDP2 fully_shard per block, "
                        "parameters in the --amp dtype); ignored in one process")


def compile_field():
    return setting("auto", choices=COMPILE_MODES,
                   help="torch.compile the model: auto = on CUDA, off on CPU (compiling costs more than it saves on "
                        "short CPU runs)")


def activation_checkpointing_field():
    return setting(False, help="recompute each transformer block's activations in the backward pass (less memory, "
                               "about a third more compute)")


def tf32_field():
    return setting(True, help="fp32 runs on CUDA: let matmuls and convolutions use TF32 tensor cores")


def peak_tflops_field():
    return setting(None, type=float, metavar="TFLOPS",
                   help="the device's dense peak, for MFU in the logs (default: from a table of known GPUs; none "
                        "on CPU)")


def tensorboard_field():
    return setting(False, help="also write every numeric metric of metrics.jsonl to TensorBoard event files in the "
                               "run directory (`tensorboard --logdir RUN`); needs the plots extra: "
                               "pip install -e '.[plots]'")
