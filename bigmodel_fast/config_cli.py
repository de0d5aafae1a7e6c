"""Command-line flags generated from config dataclasses, so each setting is declared once: in its field.

A field's name, type, default and ``metadata`` (written with :func:`setting`) give its flag:

    field                              flag
    ---------------------------------  -----------------------------------------------------------------------
    seq_len: int = 128                 --seq-len, type=int, default=128
    valid: str | None = None           --valid, default None (``str`` values are passed through as typed)
    resume: bool = False               --resume (store_true)
    pii: bool = True                   --no-pii (store_false, dest=pii)
    out: str  (no default)             --out, required
    inputs: list[str]  (positional)    inputs, nargs="+"
    texts: list[str] = setting(default_factory=list, append=True)
                                       --texts, action="append", default [] (one value per --texts)
    optim: OptimConfig = setting(...)  the nested dataclass's own flags, in the argument group ``group``, with
                                       defaults from this field's default (its default_factory()).

``metadata`` keys (all optional): ``help`` (plain text; ``%`` needs no escaping; for a bool that defaults to True
it describes the ``--no-`` flag), ``choices`` (a sequence, or a
zero-argument callable evaluated when the parser is built), ``flag`` (the option string, instead of the derived
one), ``metavar``, ``positional``, ``group`` (argument-group title), ``min`` (smallest accepted value, checked by
:func:`check_fields`), ``type`` (the argparse ``type`` callable, instead of the field's own type, e.g.
:func:`positive_int`: the parser rejects a bad value with exit code 2 and a usage message; for a list field it
converts each element), ``append`` (a ``list`` field: ``action="append"`` instead of ``nargs="+"``) and ``cli``
(False: the field has no flag; it keeps its dataclass default from the CLI).

:func:`from_args` builds the dataclass back from the parsed namespace and :func:`check_fields` (called from a
config's ``__post_init__``) enforces ``choices`` and ``min`` with messages that name the field.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable, Sequence

__all__ = ["add_dataclass_args", "check_fields", "choices_of", "default_note", "from_args", "positive_int", "setting"]

_SCALARS = (int, float, str)


def setting(default: Any = dataclasses.MISSING, *, default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
            help: str | None = None, choices: Sequence | Callable[[], Sequence] | None = None,
            flag: str | None = None, metavar: str | None = None, positional: bool = False, group: str | None = None,
            min: int | float | None = None, type: Callable[[str], Any] | None = None, append: bool = False,
            cli: bool = True) -> Any:
    """A ``dataclasses.field`` whose metadata describes its command-line flag (see the module docstring)."""
    meta = {"help": help, "choices": choices, "flag": flag, "metavar": metavar, "positional": positional,
            "group": group, "min": min, "type": type, "append": append, "cli": cli}
    meta = {k: v for k, v in meta.items() if v is not None and v is not False} | {"cli": cli}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``setting(..., type=positive_int, min=1)``: the parser and the config both
    refuse 0)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def auto_or(kind: Callable[[str], Any], ok: Callable[[Any], bool], expect: str) -> Callable[[str], Any]:
    """An argparse ``type``: the word ``auto`` (-> None, "decide for me"), or ``kind(text)`` when ``ok`` accepts it;
    anything else an ``ArgumentTypeError`` "expected 'auto' or <expect>, got ..."."""

    def parse(text: str) -> Any:
        if text.strip().lower() == "auto":
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 'auto' or {expect}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected 'auto' or {expect}, got {text.strip()}")
        return value

    return parse


def choices_of(f: dataclasses.Field) -> tuple | None:
    """The field's allowed values (its metadata ``choices``, called when it is a callable), or None."""
    choices = f.metadata.get("choices")
    if callable(choices):
        choices = choices()
    return None if choices is None else tuple(choices)


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _cli_fields(cls):
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli", True):
            yield f, hints[f.name]


def _help(f: dataclasses.Field, default: Any = dataclasses.MISSING) -> str | None:
    """The field's help, ``%``-escaped for argparse, ending in ``(default: X)`` (:func:`default_note`)."""
    text = f.metadata.get("help")
    note = default_note(default, text, is_bool=isinstance(default, bool), flag_name=f.name.replace("_", "-"))
    text = " ".join(t for t in (text, note) if t) or None
    return None if text is None else text.replace("%", "%%")


def default_note(default: Any, help_text: str | None = None, *, is_bool: bool = False, flag_name: str = "") -> str:
    """``"(default: X)"`` for an option's help, or "" when there is no default (a required option) or the help
    already says it (mentions "default"). None and an empty list read "none"; a switch reads "off" (``--x``,
    False by default) or "FLAG-NAME on" (``--no-x``: on unless given)."""
    if default is dataclasses.MISSING or (help_text and "default" in help_text.lower()):
        return ""
    if is_bool:
        shown = f"{flag_name} on" if default else "off"
    elif default is None or default == []:
        shown = "none"
    elif isinstance(default, (list, tuple)):
        shown = " ".join(str(v) for v in default)
    else:
        shown = str(default)
    return f"(default: {shown})"


def add_dataclass_args(parser: argparse.ArgumentParser, cls, *, defaults: Any = None, group: str | None = None,
                       groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add one argument per field of dataclass ``cls`` (fields with metadata ``cli=False`` are skipped).

    ``defaults``: an instance of ``cls`` whose values replace the field defaults (used for nested dataclasses).
    ``group``: argument-group title of the fields whose metadata names none (None: the parser's own list).
    Returns the argument groups by title (created on first use), so callers can add hand-written flags to them.
    Raises ``TypeError`` for a field type that has no flag form (e.g. ``dict``): give it ``cli=False``.
    """
    groups = {} if groups is None else groups

    def target(title: str | None):
        if title is None:
            return parser
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        return groups[title]

    for f, tp in _cli_fields(cls):
        default = getattr(defaults, f.name) if defaults is not None else _default(f)
        base, _ = _unwrap_optional(tp)
        title = f.metadata.get("group", group)
        if dataclasses.is_dataclass(base):
            if default is dataclasses.MISSING:
                raise TypeError(f"{cls.__name__}.{f.name}: a nested config field needs a default")
            add_dataclass_args(parser, base, defaults=default, group=title, groups=groups)
            continue
        where = target(title)
        kwargs: dict[str, Any] = {"help": _help(f, default)}
        if f.metadata.get("metavar"):
            kwargs["metavar"] = f.metadata["metavar"]
        choices = choices_of(f)
        if choices is not None:
            kwargs["choices"] = choices
        dashed = f.name.replace("_", "-")
        if base is bool:
            if default is dataclasses.MISSING:
                raise TypeError(f"{cls.__name__}.{f.name}: a bool flag needs a default")
            flag = f.metadata.get("flag") or (f"--no-{dashed}" if default else f"--{dashed}")
            where.add_argument(flag, dest=f.name, action="store_false" if default else "store_true", **kwargs)
            continue
        if typing.get_origin(base) is list and typing.get_args(base) in ((str,), ()):
            if f.metadata.get("append"):
                kwargs["action"] = "append"  # argparse copies the default list before appending to it
            else:
                kwargs["nargs"] = "+"
        elif f.metadata.get("append"):
            raise TypeError(f"{cls.__name__}.{f.name}: append=True needs a list[str] field, not {tp!r}")
        elif base in _SCALARS:
            if base is not str:
                kwargs["type"] = base
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line form for type {tp!r}; "
                            f"declare it with setting(..., cli=False)")
        if f.metadata.get("type") is not None:
            kwargs["type"] = f.metadata["type"]
        if f.metadata.get("positional"):
            where.add_argument(f.name, **kwargs)
        elif default is dataclasses.MISSING:
            where.add_argument(f.metadata.get("flag") or f"--{dashed}", dest=f.name, required=True, **kwargs)
        else:
            where.add_argument(f.metadata.get("flag") or f"--{dashed}", dest=f.name, default=default, **kwargs)
    return groups


def _values(cls, args: argparse.Namespace, defaults: Any = None) -> dict[str, Any]:
    out = {}
    for f, tp in _cli_fields(cls):
        base, _ = _unwrap_optional(tp)
        if dataclasses.is_dataclass(base):
            inner = getattr(defaults, f.name) if defaults is not None else _default(f)
            out[f.name] = dataclasses.replace(inner, **_values(base, args, inner))
        else:
            out[f.name] = getattr(args, f.name)
    return out


def from_args(cls, args: argparse.Namespace, **extra: Any):
    """``cls`` built from a namespace parsed by a parser that :func:`add_dataclass_args` filled, plus ``extra``.

    Fields without a flag keep their dataclass defaults (nested configs: the outer field's default) unless given
    in ``extra``.
    """
    kwargs = _values(cls, args)
    kwargs.update(extra)
    return cls(**kwargs)


def _one_of(values: tuple) -> str:
    names = [repr(v) for v in values]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_fields(obj) -> None:
    """Enforce the metadata ``choices`` and ``min`` of every field of dataclass instance ``obj`` (None passes).

    Raises ``ValueError("<field> must be one of 'a', 'b' or 'c', got 'x'")`` or ``("<field> must be >= 1, got 0")``.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        choices = choices_of(f)
        if choices is not None and value not in choices:
            raise ValueError(f"{f.name} must be {_one_of(choices)}, got {value!r}")
        low = f.metadata.get("min")
        if low is not None and value < low:
            raise ValueError(f"{f.name} must be >= {low}, got {value}")


def command_line(prog: str, cfg: Any, defaults: Any = None) -> list[str]:
    """The argument list that makes ``prog``'s parser build ``cfg``: positionals, then a flag for every field whose
    value differs from its default (nested configs flattened like their flags). Fields without a flag
    (``cli=False``) are left out; a value the flags cannot express (a None where the default is not None) raises
    ValueError naming the field. ``shlex.join`` of the result is a shell command line."""
    out: list[str] = prog.split()
    flags: list[str] = []
    for f, tp in _cli_fields(type(cfg)):
        value = getattr(cfg, f.name)
        default = getattr(defaults, f.name) if defaults is not None else _default(f)
        base, _ = _unwrap_optional(tp)
        if dataclasses.is_dataclass(base):
            flags += command_line("", value, default)
            continue
        dashed = f.name.replace("_", "-")
        if f.metadata.get("positional"):
            out += [str(v) for v in value] if isinstance(value, list) else [str(value)]
            continue
        if value == default:
            continue
        if base is bool:
            flags.append(f.metadata.get("flag") or (f"--no-{dashed}" if default else f"--{dashed}"))
            continue
        if value is None:
            raise ValueError(f"{type(cfg).__name__}.{f.name}: None has no command-line form (default {default!r})")
        flag = f.metadata.get("flag") or f"--{dashed}"
        if isinstance(value, list):
            repeated = f.metadata.get("append")
            flags += [x for v in value for x in (flag, str(v))] if repeated else [flag, *map(str, value)]
        else:
            flags += [flag, str(value)]
    return out + flags
