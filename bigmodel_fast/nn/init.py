"""Weight initialisation shared by all models."""

from __future__ import annotations

from torch import nn

from bigmodel_fast.nn.heads import TiedLMHead


def init_weights(module: nn.Module, std: float) -> None:
    """Initialise ``module`` and its children in place (BERT/GPT-2 scheme).

    Linear, Embedding and untied :class:`~bigmodel_fast.nn.heads.TiedLMHead` weights ~ N(0, std), Linear biases 0,
    LayerNorm weight 1 and bias 0.
    Use as ``model.apply(lambda m: init_weights(m, cfg.initializer_range))``; it only touches the
    parameters owned directly by ``module``.
    """
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.Embedding, TiedLMHead)):
        if module.weight is not None:  # a tied head has no weight of its own
            nn.init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
