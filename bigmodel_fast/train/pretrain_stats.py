"""What the pretraining logs and summary say beyond the loss, so a run shows whether it learns.

- :class:`TrainWindow`: the loss parts of the applied steps since the last log record (BERT: MLM and NSP loss,
  masked-token accuracy) kept as one device tensor (no host sync per step), the window's tokens/s, and the run's
  totals (tokens and training seconds: the run's average tokens/s).
- :func:`unigram_log_probs`: an add-one-smoothed unigram model counted once from the training shards (numpy
  ``bincount``), the baseline the held-out loss is compared with.
- :class:`HeldOut`: held-out loss over fixed batches of the validation loader: total loss, the loss on the target
  tokens (MLM: the masked positions' original ids; causal LM: the next tokens), their accuracy, NSP loss, and the
  unigram model's cross-entropy on the same target tokens.
- :func:`format_summary`: the run summary as one readable block of lines.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..nn import IGNORE_INDEX
from ..runtime import autocast_for, to_device
from .flops import throughput

# Layout of the per-step / per-window sums (a (5,) float64 device tensor).
LOSS, MLM, NSP, CORRECT, COUNT = range(5)


def _ppl(loss: float | None) -> float | None:
    """exp(loss), capped so that a diverged loss still gives a JSON number."""
    return None if loss is None else math.exp(min(loss, 700.0))


def target_view(out: dict, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The prediction of each target token of one forward pass: ``(logits (N, V), targets (N,), mean loss 0-d)``.

    MLM (BERT): the masked positions (``mlm_logits`` / ``mlm_targets`` / ``mlm_loss``); causal LM: every position
    whose (already shifted) label is not -100 (``logits`` at those positions, ``labels``, ``loss``)."""
    if "mlm_targets" in out:
        return out["mlm_logits"], out["mlm_targets"], out["mlm_loss"]
    labels = batch["labels"]
    sel = labels != IGNORE_INDEX  # (B, S)
    return out["logits"][sel], labels[sel], out["loss"]


def step_parts(out: dict, loss: torch.Tensor, parts, weights: torch.Tensor) -> torch.Tensor:
    """(5,) float64 device tensor of one micro-batch: ``[loss, mlm_loss, nsp_loss]`` as this micro-batch's
    contributions to the step's means (``loss`` from :func:`~.loss_parts.weighted_loss`, the parts times their
    ``weights``, aligned with ``parts``) and, for MLM, the masked-token ``[correct, count]`` (0 for a causal LM: no
    argmax over (B, S, V) per step)."""
    zero = loss.new_zeros(())
    weight = {key: weights[i] for i, (_, key) in enumerate(parts)}
    mlm = out["mlm_loss"] * weight["mlm_loss"] if "mlm_loss" in weight else zero
    nsp = out["nsp_loss"] * weight["nsp_loss"] if "nsp_loss" in weight else zero
    if "mlm_targets" in out:
        correct = (out["mlm_logits"].argmax(-1) == out["mlm_targets"]).sum()
        count = out["mlm_targets"].new_tensor(out["mlm_targets"].numel())
    else:
        correct = count = zero
    losses = torch.stack([loss.detach().float(), mlm.detach().float(), nsp.detach().float()]).double()
    return torch.cat([losses, torch.stack([correct, count]).double()])


class TrainWindow:
    """Loss parts and throughput since the last log record, and the run's totals.

    ``sums`` adds :func:`step_parts` of the applied steps (skipped non-finite steps add nothing); ``steps`` counts
    every step taken (their tokens are processed either way); ``data_time`` the seconds spent waiting for batches.
    Pauses for evaluation and saving are taken out with :meth:`pause` so they do not count as training time."""

    def __init__(self, device: torch.device, tokens_per_step: int, mlm: bool, nsp: bool):
        self.sums = torch.zeros(5, dtype=torch.float64, device=device)
        self.tokens_per_step, self.mlm, self.nsp = tokens_per_step, mlm, nsp
        self.total_tokens, self.total_seconds = 0, 0.0
        self.reset()

    def reset(self) -> None:
        self.sums.zero_()
        self.start, self.steps, self.good, self.data_time = time.perf_counter(), 0, 0, 0.0

    def pause(self, seconds: float) -> None:
        self.start += seconds

    def close(self, flops_per_token: float | None = None, peak: float | None = None) -> dict:
        """The window's record fields (one host sync), added to the run's totals; then starts a new window.

        ``loss`` (and for BERT ``mlm_loss``, ``nsp_loss`` (with NSP), ``mlm_ppl``, ``mlm_accuracy``) are the means
        over the window's applied steps (None when all were skipped); ``window_tokens_per_s`` is this window's rate;
        with ``flops_per_token``, ``tflops`` (achieved model TFLOP/s) and ``mfu`` (over ``peak`` TFLOP/s; None
        without one)."""
        sums = self.sums.tolist()  # waits for the device: the window's time includes its queued work
        seconds = time.perf_counter() - self.start
        tokens = self.tokens_per_step * self.steps
        self.total_tokens += tokens
        self.total_seconds += seconds
        mean = (lambda i: sums[i] / self.good) if self.good else (lambda i: None)
        rec = {"loss": mean(LOSS)}
        if self.mlm:
            rec["mlm_loss"] = mean(MLM)
            if self.nsp:
                rec["nsp_loss"] = mean(NSP)
            rec.update(mlm_ppl=_ppl(mean(MLM)), mlm_accuracy=sums[CORRECT] / sums[COUNT] if sums[COUNT] else None)
        rec.update(window_tokens=tokens, window_seconds=seconds,
                   window_tokens_per_s=round(tokens / seconds, 1) if seconds > 0 else None,
                   data_wait_fraction=round(self.data_time / seconds, 4) if seconds > 0 else None)
        if flops_per_token is not None:
            speed = throughput(tokens, seconds, flops_per_token, peak)
            rec.update(tflops=speed["tflops"], mfu=speed["mfu"])
        self.reset()
        return rec

    def totals(self, flops_per_token: float | None = None, peak: float | None = None) -> dict:
        """``tokens`` processed by this invocation's steps, ``train_seconds`` they took (eval and saving excluded)
        and ``tokens_per_s`` = tokens / train_seconds, the run's average; with ``flops_per_token`` also its
        ``tflops`` and ``mfu`` (None without a ``peak``)."""
        tps = self.total_tokens / self.total_seconds if self.total_seconds > 0 else None
        rec = {"tokens": self.total_tokens, "train_seconds": self.total_seconds, "tokens_per_s": tps}
        if flops_per_token is not None:
            speed = throughput(self.total_tokens, self.total_seconds, flops_per_token, peak)
            rec.update(tflops=speed["tflops"], mfu=speed["mfu"])
        return rec


def unigram_log_probs(shards, vocab_size: int, chunk: int = 1 << 24, progress: bool = False) -> np.ndarray:
    """(V,) float64 ``log((count[v] + 1) / (N + V))``: the add-one-smoothed unigram model of the shards' N tokens.

    Counted with ``np.bincount`` in chunks of ``chunk`` ids (the shards are uint16/uint32 memmaps), once per run
    (about 70 M ids/s on one shared CPU core; a tqdm bar with ``progress``). ValueError naming the shard when an id
    is >= ``vocab_size``."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    with tqdm(total=sum(len(s.tokens) for s in shards), desc="unigram baseline", unit="tok", unit_scale=True,
              disable=not progress, leave=False) as bar:
        for shard in shards:
            tokens = shard.tokens
            for lo in range(0, len(tokens), chunk):
                c = np.bincount(np.asarray(tokens[lo:lo + chunk]), minlength=vocab_size)
                if len(c) > vocab_size:
                    raise ValueError(f"{shard.path}: token id {len(c) - 1} >= vocab_size {vocab_size}")
                counts += c
                bar.update(min(chunk, len(tokens) - lo))
    return np.log(counts + 1.0) - math.log(int(counts.sum()) + vocab_size)


def unigram_cross_entropy(log_probs: np.ndarray, targets) -> float:
    """Mean ``-log p(target)`` (nats) of the unigram model over ``targets`` (N,) ids."""
    return float(-np.mean(log_probs[np.asarray(targets, dtype=np.int64)]))


class HeldOut:
    """Held-out evaluation over batches ``0 .. n_batches-1`` of a fixed loader (the same batches every call).

    ``kind`` names the target loss in the fields: ``"mlm"`` (BERT) or ``"lm"`` (causal). ``unigram`` is the
    (V,) log-probability table of :func:`unigram_log_probs` over the training shards. In a data-parallel run each
    rank evaluates its share of those batches (its loader's rank) and ``reduce`` (an in-place sum over the ranks)
    adds the ranks' sums, so every rank gets the fields of all ``n_batches * world_size`` rank-batches."""

    def __init__(self, loader, n_batches: int, unigram: np.ndarray, kind: str, reduce=None, world_size: int = 1):
        self.loader, self.n_batches, self.kind = loader, n_batches, kind
        self.reduce, self.world_size = reduce, world_size  # data-parallel: sum over the ranks' shares
        self.unigram = torch.from_numpy(unigram)
        self.table = None  # the unigram table on the model's device, made at the first call

    @torch.no_grad()
    def __call__(self, model, device, amp: str) -> dict:
        """Record fields: ``eval_loss`` (mean of the batches' total loss, MLM + NSP for BERT), ``eval_<kind>_loss``
        (cross-entropy per target token over all batches), ``eval_<kind>_ppl``, ``eval_<kind>_accuracy`` (argmax
        = target), ``eval_nsp_loss`` (BERT with NSP), ``unigram_loss`` / ``unigram_ppl`` on the same target tokens,
        ``eval_targets`` (their number)."""
        if self.table is None:
            self.table = self.unigram.to(device)
        was_training = model.training
        model.eval()
        sums = torch.zeros(6, dtype=torch.float64, device=device)  # loss, nsp, target nll, correct, count, unigram
        has_nsp = False
        for i in range(self.n_batches):
            batch = to_device(self.loader.batch(i), device)
            with autocast_for(device, amp):
                out = model(**batch)
            logits, targets, lm_loss = target_view(out, batch)
            n = targets.numel()
            nsp = out.get("nsp_loss")
            has_nsp = has_nsp or nsp is not None
            sums += torch.stack([out["loss"].double(), (nsp if nsp is not None else lm_loss.new_zeros(())).double(),
                                 lm_loss.double() * n, (logits.argmax(-1) == targets).sum().double(),
                                 lm_loss.new_tensor(float(n)).double(), -self.table[targets].sum()])
        model.train(was_training)
        if self.reduce is not None:
            self.reduce(sums)
        loss, nsp, nll, correct, count, uni = sums.tolist()
        k = self.kind
        batches = self.n_batches * self.world_size
        rec = {"eval_loss": loss / batches}
        if count:
            rec.update({f"eval_{k}_loss": nll / count, f"eval_{k}_ppl": _ppl(nll / count),
                        f"eval_{k}_accuracy": correct / count})
        if has_nsp:
            rec["eval_nsp_loss"] = nsp / batches
        if count:
            rec.update(unigram_loss=uni / count, unigram_ppl=_ppl(uni / count))
        rec["eval_targets"] = int(count)
        return rec


def heldout_line(rec: dict, kind: str) -> str:
    """``held-out MLM loss 5.12 (ppl 167) vs unigram 7.03 (ppl 1130), accuracy 0.091, NSP loss 0.69`` from the
    fields of :meth:`HeldOut.__call__`."""
    name = kind.upper()
    if f"eval_{kind}_loss" not in rec:
        return f"held-out loss {rec['eval_loss']:.4f} (no target tokens)"
    line = (f"held-out {name} loss {rec[f'eval_{kind}_loss']:.4f} (ppl {rec[f'eval_{kind}_ppl']:,.1f}) vs unigram "
            f"{rec['unigram_loss']:.4f} (ppl {rec['unigram_ppl']:,.1f}), {'masked-' if kind == 'mlm' else ''}"
            f"token accuracy {rec[f'eval_{kind}_accuracy']:.4f}")
    if "eval_nsp_loss" in rec:
        line += f", NSP loss {rec['eval_nsp_loss']:.4f}"
    return line


def _num(x, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def format_summary(s: dict) -> str:
    """The summary :func:`~.pretrain.pretrain` returns as one block of lines (what ``bmf pretrain`` prints)."""
    lines = [f"pretrain {s.get('arch', '')}: steps {s['start_step']} -> {s['steps']}, {s['tokens']:,} tokens in "
             f"{s['train_seconds']:.1f} s of training: {_num(s['tokens_per_s'], ',.0f')} tokens/s (run average)"]
    if s.get("tflops") is not None:
        speed = f"  {s['tflops']:.3g} model TFLOP/s ({s['flops_per_token'] / 1e6:,.1f} MFLOP per token)"
        speed += f", MFU {100 * s['mfu']:.1f}% of {s['peak_tflops']:g} TFLOP/s" if s.get("mfu") is not None else ""
        if s.get("world_size", 1) > 1:
            speed += f"; {s['world_size']} ranks ({s['parallel']}), global batch {s['global_batch']}"
        lines.append(speed)
    if "train_loss" in s:
        train = f"  train (last log window): loss {_num(s['train_loss'], '.4f')}"
        if "mlm_loss" in s:
            train += f" = MLM {_num(s['mlm_loss'], '.4f')}"
            if "nsp_loss" in s:
                train += f" + NSP {_num(s['nsp_loss'], '.4f')}"
            train += f"; MLM ppl {_num(s['mlm_ppl'], ',.1f')}, masked-token accuracy {_num(s['mlm_accuracy'], '.4f')}"
        lines.append(train)
    if "heldout" in s:
        lines.append(f"  step {s['heldout_step']}: {heldout_line(s['heldout'], s['target_kind'])}")
    elif s.get("no_heldout"):
        lines.append(f"  held-out: {s['no_heldout']}")
    if s.get("skipped_nonfinite"):
        lines.append(f"  non-finite steps skipped: {s['skipped_nonfinite']}")
    if s.get("grad_scaler_skipped"):
        lines.append(f"  fp16 steps skipped by the GradScaler after an overflow: {s['grad_scaler_skipped']}")
    lines.append(f"  checkpoint {s['checkpoint']}; metrics {s['metrics']} (last record: this summary)")
    return "\n".join(lines)
