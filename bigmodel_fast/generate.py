"""``bmf generate``: text continuation from a GPT checkpoint or an ``lm`` bundle, in Python, the way ``bmf_runner``
generates (csrc/deploy/generate.cpp, flags of csrc/deploy/args.cpp).

Same parameters and semantics as the runner: ``--max-new-tokens N`` (0..65536), ``--top-k K`` (1 = greedy, the
first maximum), ``--temperature T`` (finite, > 0; used when K > 1), ``--seed S`` (one ``std::mt19937_64`` stream
over all prompts, in order: :mod:`bigmodel_fast.sampling` draws exactly as the runner does); prompt ids have no
special tokens; the context is the last ``max_len`` ids (the model's positions), so generation slides past the
context length instead of stopping; a prompt stops after N new ids or after ``</s>`` (the eos id, included in
``generated_ids``). An empty prompt starts from ``<s>`` (the bos id; GPT-2: ``<|endoftext|>``), else from eos like
the runner; a tokenizer with neither is an error here (the runner starts from id 0).

Every step recomputes the whole window (no KV cache: the GPT model here has none), as the runner does.
Output: one JSON object per prompt, ``{"prompt" (--echo), "generated_ids", "text", "prompt_ids" (--print-ids)}``,
the runner's layout.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TextIO

import torch

from .config_cli import check_fields, positive_int, setting
from .data.lines import DEFAULT_MAX_LINE_BYTES, iter_lines
from .jsonio import dumps
from .sampling import MT19937_64, choose

__all__ = ["GenerateConfig", "LanguageModel", "generate_ids", "load_language_model", "run_generate"]

MAX_NEW_TOKENS = 1 << 16  # the runner's kMaxNewTokens
MAX_TOP_K = 1 << 20  # the runner's kMaxTopK
MAX_SEED = (1 << 63) - 1  # the runner parses --seed as 0..INT64_MAX


@dataclass
class GenerateConfig:
    """Settings of ``bmf generate`` (each field's metadata is also its flag: :mod:`bigmodel_fast.config_cli`)."""

    model: str = setting(help="GPT pretraining checkpoint (bmf pretrain --arch gpt, or bmf import-hf of a GPT-2) "
                              "or an lm bundle (bmf export of one)")
    prompt: list[str] = setting(default_factory=list, append=True, help="a prompt (repeatable)")
    prompt_file: str | None = setting(None, help="a file of prompts, one per line (the line policy of bmf predict "
                                                 "--input and bmf_runner), - for stdin; after the --prompt ones")
    max_new_tokens: int = setting(32, min=0, help=f"tokens to generate per prompt, 0..{MAX_NEW_TOKENS}; fewer when "
                                                  f"</s> comes first")
    top_k: int = setting(1, type=positive_int, min=1, help=f"sample from the K most likely tokens, 1..{MAX_TOP_K}; "
                                                           f"1 = greedy (the first maximum)")
    temperature: float = setting(1.0, help="sampling temperature with --top-k > 1: finite, > 0")
    seed: int = setting(0, min=0, help=f"sampling seed, 0..{MAX_SEED}: one std::mt19937_64 stream over all "
                                       f"prompts, as bmf_runner --seed")
    echo: bool = setting(False, help="add the prompt (\"prompt\") to each output record")
    print_ids: bool = setting(False, help="add the prompt's ids (\"prompt_ids\")")
    max_line_bytes: int = setting(DEFAULT_MAX_LINE_BYTES, type=positive_int, min=1,
                                  help="--prompt-file: keep at most this many bytes of a line")
    device: str = setting("cpu", help="cpu | cuda | cuda:N | auto (checkpoints; an AOTInductor bundle runs on CPU)")

    def __post_init__(self):
        check_fields(self)
        if self.max_new_tokens > MAX_NEW_TOKENS:
            raise ValueError(f"--max-new-tokens must be in 0..{MAX_NEW_TOKENS}, got {self.max_new_tokens}")
        if self.top_k > MAX_TOP_K:
            raise ValueError(f"--top-k must be in 1..{MAX_TOP_K}, got {self.top_k}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"--temperature must be a finite number > 0, got {self.temperature}")
        if self.seed > MAX_SEED:
            raise ValueError(f"--seed must be in 0..{MAX_SEED}, got {self.seed}")


@dataclass
class LanguageModel:
    """``forward(input_ids (1, L) long, attention_mask (1, L) bool) -> logits (1, L, V)`` with its tokenizer,
    context length (``max_len``), start/stop ids and the device its inputs go to."""

    forward: Callable
    tokenizer: object
    max_len: int
    bos_id: int | None
    eos_id: int | None
    device: torch.device
    kind: str


def load_language_model(path: str | Path, device: str = "cpu") -> LanguageModel:
    """The language model of a GPT pretraining checkpoint directory or an ``lm`` bundle directory; ValueError
    naming the path for anything else."""
    from .data.tokenizer_base import load_tokenizer
    from .export.bundle import BUNDLE_JSON
    from .runtime import pick_device

    path = Path(path)
    if (path / BUNDLE_JSON).is_file():
        from .export.bundle import load_bundle_model

        model, info = load_bundle_model(path, device=str(pick_device(device)))
        if info["task"] != "lm":
            raise ValueError(f"{path}: a {info['task']!r} bundle does not generate text; expected an lm bundle "
                             f"(`bmf export` of a GPT pretraining checkpoint)")
        ids = info["special_ids"]
        return LanguageModel(model, load_tokenizer(path / info["tokenizer_file"]), int(info["max_len"]),
                             ids.get("bos"), ids.get("eos"), torch.device(info["device"]), f"bundle:{info['format']}")
    from . import checkpoint as ckpt

    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model directory; expected a GPT checkpoint or an lm bundle")
    cfg, meta = ckpt.read_meta(path)
    if meta.get("kind") != "pretrain" or cfg.get("arch") != "gpt":
        raise ValueError(f"{path}: a {meta.get('kind')} checkpoint of arch {cfg.get('arch')!r} does not generate "
                         f"text; expected a GPT pretraining checkpoint (bmf pretrain --arch gpt, bmf import-hf of a "
                         f"GPT-2) or an lm bundle")
    from .export.gpt import LMForExport

    lm, model_cfg, _ = ckpt.load_model(path, "pretrain")
    dev = pick_device(device)
    forward = LMForExport(lm).to(dev).eval()
    tok = load_tokenizer(path)
    return LanguageModel(forward, tok, int(model_cfg.max_position), tok.bos_id, tok.eos_id, dev, "checkpoint")


@torch.inference_mode()
def generate_ids(lm: LanguageModel, prompt_ids: list[int], max_new_tokens: int, top_k: int = 1,
                 temperature: float = 1.0, rng: MT19937_64 | None = None) -> list[int]:
    """New ids after ``prompt_ids`` (non-empty): at most ``max_new_tokens``, stopping after the eos id; each step
    feeds the last ``lm.max_len`` ids (full recompute) and picks with :func:`bigmodel_fast.sampling.choose`."""
    if not prompt_ids:
        raise ValueError("generate_ids needs at least one prompt id")
    rng = rng if rng is not None else MT19937_64(0)
    ids, out = list(prompt_ids), []
    for _ in range(max_new_tokens):
        window = torch.tensor([ids[-lm.max_len:]], dtype=torch.long, device=lm.device)  # (1, L)
        logits = lm.forward(window, torch.ones_like(window, dtype=torch.bool))[0, -1]  # (V,)
        nxt = choose(logits.float().cpu().numpy(), top_k, temperature, rng)
        out.append(nxt)
        ids.append(nxt)
        if nxt == lm.eos_id:
            break
    return out


def _clean(text: str) -> str:
    """``text`` as valid UTF-8 (command-line bytes that were not UTF-8 -> U+FFFD), as the runner sanitizes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _prompts(cfg: GenerateConfig) -> Iterator[str]:
    yield from (_clean(p) for p in cfg.prompt)
    if cfg.prompt_file:
        from .eval.stream import open_input

        with open_input(cfg.prompt_file) as stream:
            yield from iter_lines(stream, cfg.max_line_bytes)


def start_ids(lm: LanguageModel, prompt: str, where: str) -> list[int]:
    """The prompt's ids; an empty one is ``[bos]`` (else ``[eos]``); ValueError when the tokenizer has neither."""
    ids = [int(i) for i in lm.tokenizer.encode(prompt)]
    if ids:
        return ids
    for start in (lm.bos_id, lm.eos_id):
        if start is not None and start >= 0:
            return [int(start)]
    raise ValueError(f"{where}: the prompt is empty (no tokens) and the tokenizer {lm.tokenizer.model_file} has no "
                     f"bos or eos token to start from; give a non-empty prompt")


def run_generate(cfg: GenerateConfig, out: TextIO | None = None) -> int:
    """Generate for every prompt of ``cfg`` (``--prompt``s, then ``--prompt-file`` lines) and write one JSON line
    each to ``out`` (default: stdout); returns how many prompts were answered."""
    out = out if out is not None else sys.stdout
    if not cfg.prompt and not cfg.prompt_file:
        raise ValueError("no prompt given (use --prompt TEXT or --prompt-file FILE, - for stdin)")
    if cfg.prompt_file and cfg.prompt_file != "-":
        from .eval.stream import check_input

        check_input(cfg.prompt_file)  # before the model is loaded
    lm = load_language_model(cfg.model, cfg.device)
    if cfg.top_k == 1 and cfg.temperature != 1.0:
        print("bmf generate: note: --temperature has no effect with --top-k 1 (greedy)", file=sys.stderr)
    rng = MT19937_64(cfg.seed)
    n = 0
    for n, prompt in enumerate(_prompts(cfg), 1):
        where = f"prompt {n}" if n <= len(cfg.prompt) else f"{cfg.prompt_file}:{n - len(cfg.prompt)}"
        prompt_ids = start_ids(lm, prompt, where)
        new = generate_ids(lm, prompt_ids, cfg.max_new_tokens, cfg.top_k, cfg.temperature, rng)
        row: dict = {"prompt": prompt} if cfg.echo else {}
        row["generated_ids"] = new
        row["text"] = lm.tokenizer.decode(new)
        if cfg.print_ids:
            row["prompt_ids"] = prompt_ids
        out.write(dumps(row) + "\n")
        out.flush()
    return n
