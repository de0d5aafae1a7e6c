"""Data-parallel training on torchrun: DDP by default, FSDP2 (``fully_shard``) under ``--parallel fsdp``.

Nothing here launches processes or moves bytes between them by itself: ``torchrun`` starts the ranks and sets
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (multi-node through its usual ``--nnodes`` / ``--rdzv-*`` flags), and
``torch.distributed`` does the communication (nccl on CUDA, gloo on CPU). Without those variables (or with
``WORLD_SIZE=1``) :class:`Parallel` is a no-op and the trainers run exactly as a plain one-process run.

:class:`Parallel` is what the trainers ask of it:

* :meth:`~Parallel.wrap`: the model to train (``DistributedDataParallel``, or the module sharded in place by
  ``fully_shard`` per transformer block and at the root, with a ``MixedPrecisionPolicy`` of bf16 (or
  fp16) parameters and fp32 gradient reduction under ``--amp bf16|fp16``);
* :meth:`~Parallel.sync_gradients`: gradient accumulation skips the all-reduce on non-final micro-steps
  (``no_sync`` for DDP, ``set_requires_gradient_sync`` for FSDP2);
* the state a checkpoint needs, gathered to rank 0 in the one-process layout (:meth:`~Parallel.model_state`,
  :meth:`~Parallel.optimizer_state`), so a checkpoint written by N ranks is the same kind of file as one written by
  one process, readable by every other command and loadable on any number of ranks
  (:meth:`~Parallel.load_optimizer_state`); FSDP2 states go through ``torch.distributed.checkpoint.state_dict``;
* small collectives for what must agree across ranks: summed loss/statistics, objects (RNG states, scores).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn

PARALLEL_MODES = ("ddp", "fsdp")


@dataclass(frozen=True)
class RankInfo:
    """Where this process stands in the job: ``rank`` of ``world_size`` and ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "RankInfo":
        """What ``torchrun`` set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one process without them. ValueError
        naming the variable when one is not an integer or the three do not fit together."""
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
            raw = os.environ.get(name)
            try:
                values[name] = default if raw is None or raw == "" else int(raw)
            except ValueError:
                raise ValueError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None
        info = cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
        if info.world_size < 1 or not 0 <= info.rank < info.world_size or info.local_rank < 0:
            raise ValueError(f"RANK={info.rank}, WORLD_SIZE={info.world_size}, LOCAL_RANK={info.local_rank} do not "
                             f"describe a process of a job (expected 0 <= RANK < WORLD_SIZE); launch with torchrun")
        return info


WRAPPER_PREFIXES = ("_checkpoint_wrapped_module.", "_orig_mod.")  # added to names by checkpoint/compile wrappers


def plain_name(name: str) -> str:
    """A parameter name without the activation-checkpoint / compile wrappers' prefixes (its one-process name)."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


class Parallel:
    """The data-parallel setting of one training process (see the module docstring).

    Args:
        mode: ``"ddp"`` or ``"fsdp"`` (used only when the job has more than one rank).
        device: the device the trainer picked (``pick_device``); under torchrun on CUDA each rank takes
            ``cuda:LOCAL_RANK`` instead.
        info: the job (default: from torchrun's environment variables).
    """

    def __init__(self, mode: str, device: torch.device, info: RankInfo | None = None):
        if mode not in PARALLEL_MODES:
            raise ValueError(f"parallel must be one of {', '.join(PARALLEL_MODES)}, got {mode!r}")
        self.mode = mode
        self.info = RankInfo.from_env() if info is None else info
        self.rank, self.world_size = self.info.rank, self.info.world_size
        self.enabled = self.world_size > 1
        self.device = device
        self._owns_group = False
        if self.enabled and device.type == "cuda":
            self.device = torch.device("cuda", self.info.local_rank)
            torch.cuda.set_device(self.device)
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
            self._owns_group = True
        self.model: nn.Module | None = None  # the wrapped model (DDP) or the sharded module (FSDP2)
        self.module: nn.Module | None = None  # the model itself (parameters named as in a one-process run)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, shows the bar and writes checkpoints."""
        return self.rank == 0

    def describe(self) -> str:
        if not self.enabled:
            return "1 process"
        backend = dist.get_backend() if dist.is_initialized() else "?"
        return f"{self.world_size} ranks, {self.mode.upper()} over {backend}"

    # ------------------------------------------------------------------------------------------------ the model
    def wrap(self, module: nn.Module, amp_dtype: torch.dtype | None = None) -> nn.Module:
        """The model the training loop calls: ``module`` itself in one process; DDP around it; or ``module`` sharded
        in place by FSDP2 (each block, then the root) with ``amp_dtype`` parameters when given. Call it after the
        weights are loaded (every rank holds the same full weights then) and before the optimizer is built."""
        self.module = module
        if not self.enabled:
            self.model = module
        elif self.mode == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(module, device_ids=ids)
        else:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            policy = (MixedPrecisionPolicy(param_dtype=amp_dtype, reduce_dtype=torch.float32)
                      if amp_dtype is not None else MixedPrecisionPolicy())
            from .speed import transformer_layers

            for layers, i in transformer_layers(module):
                fully_shard(layers[i], mp_policy=policy)
            fully_shard(module, mp_policy=policy)
            self.model = module
        return self.model

    @contextlib.contextmanager
    def sync_gradients(self, final: bool) -> Iterator[None]:
        """Around one micro-step's forward and backward: the gradient all-reduce (DDP) or reduce-scatter (FSDP2)
        happens only when ``final`` (the last micro-batch of an optimizer step)."""
        if not self.enabled or final and self.mode == "ddp":
            yield
        elif self.mode == "ddp":
            with self.model.no_sync():
                yield
        else:
            self.model.set_requires_gradient_sync(final)
            yield

    # ------------------------------------------------------------------------------------------------ collectives
    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks, in place (unchanged in one process)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a small picklable value made by this job itself, never a file)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group if this object created it."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    # ------------------------------------------------------------------------------------------------ state
    def model_state(self, every_rank: bool = False) -> dict[str, torch.Tensor]:
        """The full model state dict (CPU tensors, one-process names) on rank 0, and on every rank with
        ``every_rank``; every rank must call it (FSDP2 gathers the shards). Without ``every_rank`` the other ranks
        get ``{}`` under FSDP2."""
        if self.enabled and self.mode == "fsdp":
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            options = StateDictOptions(full_state_dict=True, cpu_offload=not every_rank)
            state = get_model_state_dict(self.module, options=options)
            return {k: v.cpu() for k, v in state.items()} if every_rank else state
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a full state dict (every rank passes the same one: :meth:`model_state` with ``every_rank``) into the
        possibly sharded model."""
        if self.enabled and self.mode == "fsdp":
            from torch.distributed.tensor import DTensor, distribute_tensor

            shards = {}
            for name, local in self.module.state_dict().items():
                full = state[name].to(local.device, local.dtype)
                if isinstance(local, DTensor):  # each rank keeps its own shard of the full tensor (no communication)
                    full = distribute_tensor(full, local.device_mesh, local.placements, src_data_rank=None)
                shards[name] = full
            self.module.load_state_dict(shards)
        else:
            self.module.load_state_dict(state)

    def _param_names(self, opt: torch.optim.Optimizer) -> list[str]:
        """The one-process name of each optimizer parameter, in the optimizer's order (its state-dict ids)."""
        name_of = {id(p): plain_name(name) for name, p in self.module.named_parameters()}
        return [name_of[id(p)] for group in opt.param_groups for p in group["params"]]

    def optimizer_state(self, opt: torch.optim.Optimizer) -> dict:
        """The optimizer's state dict in the one-process layout (integer ids in parameter order, full tensors) on
        rank 0; every rank must call it. Other ranks get ``{}`` under FSDP2."""
        if not (self.enabled and self.mode == "fsdp"):
            return opt.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        full = get_optimizer_state_dict(self.module, opt,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not full:
            return {}
        index = {name: i for i, name in enumerate(self._param_names(opt))}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[n] for n in g["params"]]}
                  for g in full["param_groups"]]
        return {"state": {index[name]: entries for name, entries in full["state"].items()}, "param_groups": groups}

    def load_optimizer_state(self, opt: torch.optim.Optimizer, state: dict) -> None:
        """Load a one-process layout optimizer state (from :meth:`optimizer_state` or a one-process run); every rank
        passes the same one."""
        if not (self.enabled and self.mode == "fsdp"):
            opt.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        names = self._param_names(opt)
        full = {"state": {names[int(i)]: entries for i, entries in state["state"].items()},
                "param_groups": [{**{k: v for k, v in g.items() if k != "params"},
                                  "params": [names[int(i)] for i in g["params"]]} for g in state["param_groups"]]}
        set_optimizer_state_dict(self.module, opt, full, options=StateDictOptions(full_state_dict=True))
