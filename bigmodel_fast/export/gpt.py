"""GPT language-model export: a logits-only wrapper with the bundle signature, and the reference greedy loop.

Bundle signature of an LM: ``forward(input_ids (B, S) long, attention_mask (B, S) bool) -> logits (B, S, V)``
(next-token logits at every position; pads masked as keys, right padding). :func:`greedy_generate` is the Python
reference of the C++ runner's generation loop (``bmf_runner LM_BUNDLE --max-new-tokens N``): prompt ids with no
special tokens (an empty prompt starts from ``<s>``), the last ``max_position`` ids as context, no KV cache, argmax
(first maximum), stop after ``</s>``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from bigmodel_fast.data.special_tokens import SPECIAL
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.models.gpt import GPTForCausalLM, GPTModel
from bigmodel_fast.nn import TiedLMHead

__all__ = ["LMForExport", "greedy_generate"]


class LMForExport(nn.Module):
    """Export view of a :class:`GPTForCausalLM`: logits only, same weights (shared, not copied).

    Scriptable with ``torch.jit.script`` and traceable by ``torch.export``.
    """

    __jit_ignored_attributes__ = ["cfg"]

    def __init__(self, lm: GPTForCausalLM) -> None:
        super().__init__()
        self.cfg: ModelConfig = lm.cfg
        self.backbone: GPTModel = lm.backbone
        self.lm_head: TiedLMHead = lm.lm_head

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """input_ids (B, S) long, attention_mask (B, S) bool -> next-token logits (B, S, V)."""
        hidden = self.backbone(input_ids, attention_mask, None, None)  # (B, S, E)
        return self.lm_head(hidden, self.backbone.embeddings.word_embeddings.weight)  # (B, S, V)


@torch.no_grad()
def greedy_generate(model: nn.Module, prompt_ids: list[int], max_new_tokens: int, context: int,
                    bos_id: int = SPECIAL.bos, eos_id: int = SPECIAL.eos) -> tuple[list[int], Tensor]:
    """Greedy continuation of ``prompt_ids`` exactly as the C++ runner does it.

    Args:
        model: ``forward(input_ids, attention_mask) -> (B, S, V)`` (:class:`LMForExport` or a loaded bundle model).
        prompt_ids: prompt token ids (no special tokens); empty -> ``[bos_id]``.
        max_new_tokens: tokens to generate (fewer when ``eos_id`` comes first; it is included).
        context: longest context fed to the model (the model's ``max_position``).

    Returns:
        ``(generated_ids, first_logits)``: the new ids and the (V,) next-token logits after the prompt.
    """
    ids = list(prompt_ids) or [bos_id]
    generated: list[int] = []
    first = None
    for _ in range(max(max_new_tokens, 1)):
        window = torch.tensor([ids[-context:]], dtype=torch.long)  # (1, L)
        logits = model(window, torch.ones_like(window, dtype=torch.bool))[0, -1].float()  # (V,)
        if first is None:
            first = logits
        if len(generated) >= max_new_tokens:
            break
        nxt = int(torch.argmax(logits))
        generated.append(nxt)
        ids.append(nxt)
        if nxt == eos_id:
            break
    return generated, first
