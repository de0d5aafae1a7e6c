"""Model configuration: one dataclass for BERT, GPT and LSTM, validated on construction, JSON round trip."""

from __future__ import annotations

import functools
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

__all__ = ["ACTIVATIONS", "ConfigError", "ModelConfig"]  # ARCHS too, computed on access (module __getattr__)

# MLP (and BERT MLM-head) activations: exact erf GELU, GPT-2's tanh approximation, ReLU
ACTIVATIONS = ("gelu", "gelu_new", "relu")
PROBLEM_TYPES = ("single_label", "multi_label", "regression")  # what a classifier head predicts


def _arch_names() -> tuple[str, ...]:
    """The registered architectures (imported here, not at module level: the registry and every model module
    import this one)."""
    from bigmodel_fast.models.registry import arch_names

    return arch_names()


def __getattr__(name: str):
    if name == "ARCHS":  # ("bert", "gpt", "lstm") today: whatever bigmodel_fast.models.registry holds
        return _arch_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ConfigError(ValueError):
    """Invalid model configuration; the message names the field (and file, when loaded from one)."""


def _expect(text: str, **kw):
    """A field whose metadata ``expect`` says what it accepts (quoted by the type check's message)."""
    return field(metadata={"expect": text}, **kw)


def _accepted(tp) -> tuple[type, ...]:
    """Python types a config value of annotation ``tp`` may have (ints are floats too; lists may be tuples)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(tp) for t in _accepted(arg))
    if typing.get_origin(tp) is list:
        return (list, tuple)
    return (float, int) if tp is float else (tp,)


@functools.cache
def _field_types() -> dict[str, tuple[tuple[type, ...], str]]:
    """field name -> (accepted python types, human-readable expectation), from the annotations and metadata."""
    hints = typing.get_type_hints(ModelConfig)
    return {f.name: (_accepted(hints[f.name]), f.metadata["expect"]) for f in fields(ModelConfig)}


@dataclass
class ModelConfig:
    """Architecture hyper-parameters for :mod:`bigmodel_fast.models`.

    Attributes:
        arch: ``"bert"`` (bidirectional encoder), ``"gpt"`` (causal decoder) or ``"lstm"`` (word embeddings ->
            ``num_layers`` stacked LSTM layers of width ``hidden_size``; ``num_heads``, ``num_kv_heads``,
            ``intermediate_size``, ``pre_ln``, ``type_vocab_size`` and ``max_position`` beyond input checks are
            unused).
        vocab_size: number of token ids (the tokenizer's ``vocab_size``).
        hidden_size: model width E; must be divisible by ``num_heads``.
        num_layers: transformer blocks.
        num_heads: attention heads H.
        num_kv_heads: key/value heads for grouped-query attention (``None`` = ``num_heads``).
        intermediate_size: MLP hidden width.
        max_position: learned positions = longest accepted sequence.
        type_vocab_size: BERT segment ids (ignored by GPT, which has no segment embeddings).
        dropout: dropout on embeddings, attention probabilities, residual branches and the classifier input.
        pre_ln: pre-LN (True) / post-LN (False) blocks; ``None`` = arch default (bert: post-LN like the original
            BERT, gpt: pre-LN). Use :meth:`use_pre_ln` for the resolved value.
        layer_norm_eps: LayerNorm epsilon.
        pad_id: padding token id.
        tie_embeddings: share the output projection with the word embeddings.
        num_labels: classifier outputs (0 for pretraining-only configs).
        label_names: optional names of the ``num_labels`` classes, in logit order.
        problem_type: what a classifier head's ``num_labels`` outputs mean (:data:`PROBLEM_TYPES`):
            ``"single_label"`` (softmax over classes, cross-entropy), ``"multi_label"`` (one independent
            sigmoid per label, binary cross-entropy) or ``"regression"`` (``num_labels`` real targets, MSE).
        initializer_range: std of the normal weight init.
        bidirectional: lstm only: bidirectional LSTM layers (classifiers; a causal LM must be unidirectional).
        hidden_act: activation of the MLP and of BERT's MLM-head transform: ``"gelu"`` (exact erf form, the
            default), ``"gelu_new"`` (tanh approximation, GPT-2) or ``"relu"``.
        position_offset: first learned position used by real tokens (0 by default). RoBERTa checkpoints use
            ``pad_id + 1``: without explicit ``position_ids`` a token gets ``position_offset`` + (its index among
            the non-pad tokens of its row) and pad tokens get ``position_offset - 1``; explicit 0-based
            ``position_ids`` are shifted by ``position_offset``. Inputs may be ``max_position - position_offset``
            tokens long.
    """

    arch: str = _expect("str naming a registered arch", default="bert")
    vocab_size: int = _expect("int > 0", default=8000)
    hidden_size: int = _expect("int > 0", default=256)
    num_layers: int = _expect("int > 0", default=4)
    num_heads: int = _expect("int > 0", default=4)
    num_kv_heads: int | None = _expect("int > 0 dividing num_heads, or null", default=None)
    intermediate_size: int = _expect("int > 0", default=1024)
    max_position: int = _expect("int > 0", default=512)
    type_vocab_size: int = _expect("int >= 0", default=2)
    dropout: float = _expect("float in [0, 1)", default=0.1)
    pre_ln: bool | None = _expect("bool, or null for the arch default (bert: post-LN, gpt: pre-LN)",
                                  default=None)
    layer_norm_eps: float = _expect("float > 0", default=1e-12)
    pad_id: int = _expect("int in [0, vocab_size)", default=0)
    tie_embeddings: bool = _expect("bool", default=True)
    num_labels: int = _expect("int >= 0", default=0)
    label_names: list[str] = _expect("list of str", default_factory=list)
    problem_type: str = _expect(f"one of {', '.join(PROBLEM_TYPES)}", default="single_label")
    initializer_range: float = _expect("float > 0", default=0.02)
    bidirectional: bool = _expect("bool (true only for arch lstm)", default=False)
    hidden_act: str = _expect(f"one of {', '.join(ACTIVATIONS)}", default="gelu")
    position_offset: int = _expect("int in [0, max_position)", default=0)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self, source: str | None = None) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad field and what was expected."""
        where = f"{source}: " if source else ""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{where}model config field {name!r}: {why}")

        for name, (accepted, expect) in _field_types().items():
            value = getattr(self, name)
            is_bool = isinstance(value, bool)
            if is_bool and bool not in accepted:  # bool is an int subclass; do not accept True as a size
                raise bad(name, f"expected {expect}, got bool {value!r}")
            if not isinstance(value, accepted):
                raise bad(name, f"expected {expect}, got {type(value).__name__} {value!r}")
        for name in ("dropout", "layer_norm_eps", "initializer_range"):
            setattr(self, name, float(getattr(self, name)))
        self.label_names = list(self.label_names)

        if self.arch not in _arch_names():
            raise bad("arch", f"expected one of {', '.join(_arch_names())}, got {self.arch!r}")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position"):
            if getattr(self, name) <= 0:
                raise bad(name, f"expected int > 0, got {getattr(self, name)}")
        for name in ("type_vocab_size", "num_labels"):
            if getattr(self, name) < 0:
                raise bad(name, f"expected int >= 0, got {getattr(self, name)}")
        if self.arch != "lstm" and self.hidden_size % self.num_heads != 0:
            raise bad("hidden_size", f"{self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.num_kv_heads is not None and (self.num_kv_heads <= 0 or self.num_heads % self.num_kv_heads != 0):
            raise bad("num_kv_heads", f"expected a positive divisor of num_heads={self.num_heads}, "
                                      f"got {self.num_kv_heads}")
        if self.bidirectional and self.arch != "lstm":
            raise bad("bidirectional", f"only arch 'lstm' has bidirectional layers, got arch={self.arch!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", f"expected float in [0, 1), got {self.dropout}")
        if self.layer_norm_eps <= 0.0:
            raise bad("layer_norm_eps", f"expected float > 0, got {self.layer_norm_eps}")
        if self.initializer_range <= 0.0:
            raise bad("initializer_range", f"expected float > 0, got {self.initializer_range}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise bad("pad_id", f"expected int in [0, vocab_size={self.vocab_size}), got {self.pad_id}")
        if self.arch == "bert" and self.type_vocab_size == 0:
            raise bad("type_vocab_size", "bert needs at least 1 segment type, got 0")
        if self.hidden_act not in ACTIVATIONS:
            raise bad("hidden_act", f"expected one of {', '.join(ACTIVATIONS)}, got {self.hidden_act!r}")
        if not 0 <= self.position_offset < self.max_position:
            raise bad("position_offset", f"expected int in [0, max_position={self.max_position}), "
                                         f"got {self.position_offset}")
        if not all(isinstance(n, str) for n in self.label_names):
            raise bad("label_names", f"expected list of str, got {self.label_names!r}")
        if self.problem_type not in PROBLEM_TYPES:
            raise bad("problem_type", f"expected one of {', '.join(PROBLEM_TYPES)}, got {self.problem_type!r}")
        if self.label_names and len(self.label_names) != self.num_labels:
            raise bad("label_names", f"has {len(self.label_names)} names but num_labels={self.num_labels}")

    def use_pre_ln(self) -> bool:
        """Resolved block style: ``pre_ln`` when set, else False for bert and True for gpt."""
        if self.pre_ln is not None:
            return self.pre_ln
        return self.arch == "gpt"

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> "ModelConfig":
        """Build from a mapping. Unknown keys and invalid values raise :class:`ConfigError` naming the key.

        Missing keys take their defaults. ``source`` (e.g. a file name) prefixes error messages.
        """
        where = f"{source}: " if source else ""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}model config must be a JSON object / mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ConfigError(
                f"{where}unknown model config field(s) {', '.join(map(repr, unknown))}; "
                f"valid fields: {', '.join(sorted(known))}"
            )
        cfg = cls.__new__(cls)
        defaults = cls()
        for f in fields(cls):
            value = data.get(f.name, getattr(defaults, f.name))
            setattr(cfg, f.name, list(value) if f.name == "label_names" and isinstance(value, (list, tuple))
                    else value)
        cfg.validate(source)
        return cfg

    def save(self, path: str | Path) -> Path:
        """Write the config as indented JSON to ``path`` (parents created); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        """Read a JSON config written by :meth:`save`; errors name the file (and line for bad JSON)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"model config file {str(p)!r} does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}:{e.lineno}:{e.colno}: invalid JSON in model config: {e.msg}") from e
        return cls.from_dict(data, source=str(p))
