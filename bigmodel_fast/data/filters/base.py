"""The one interface every document filter implements (:class:`DocFilter`), and its answer (:class:`Verdict`).

``f.filter(view, stats) -> Verdict``: ``view`` is the document's :class:`~._text.TextView` (its ``.text`` plus the
cached lines, tokens and script), ``stats`` the stage's :class:`~bigmodel_fast.data.stats.StageStats` (or
``None``) for any extra counting a filter does (C4 tallies removed lines there). The verdict keeps the document,
possibly with a new text (C4's line removal), or drops it with the reason ``"<family>:<rule>"``. A filter never
modifies the view: the chain (:class:`~bigmodel_fast.data.quality.QualityFilter`) gives the later filters a view of
the new text (:meth:`~._text.TextView.with_text`) and counts the drops.

A custom filter is any object with a ``name`` and that method::

    class NoShouting:
        name = "custom"
        def filter(self, view, stats=None):
            return Verdict(False, reason="custom:shouting") if view.text.isupper() else KEEP

    QualityFilter(cfg, extra_filters=[NoShouting()])
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..stats import StageStats
from ._text import TextView

__all__ = ["Verdict", "KEEP", "DocFilter", "RuleFilter"]


@dataclass(frozen=True)
class Verdict:
    """``keep``; ``text``: the document's new text when the filter changed it (kept or not; ``None``: unchanged);
    ``reason``: ``"<family>:<rule>"`` when dropped, else ``None``. The chain's own result always has ``text``."""

    keep: bool
    text: str | None = None
    reason: str | None = None


KEEP = Verdict(True)  # kept, text unchanged (shared: verdicts are immutable)


@runtime_checkable
class DocFilter(Protocol):
    """A document filter: ``name`` (its family, the prefix of its drop reasons) and :meth:`filter`."""

    name: str

    def filter(self, view: TextView, stats: StageStats | None = None) -> Verdict:
        """Keep (possibly with a new text) or drop ``view``'s document; see the module docstring."""
        ...


class RuleFilter:
    """A family whose rules only drop documents: ``check(view, cfg)`` names the first failed rule or gives
    ``None``; subclasses set ``name``, ``RULES`` (every rule ``check`` can name) and ``check``."""

    name: ClassVar[str]
    RULES: ClassVar[tuple[str, ...]]
    check: ClassVar[Callable[[TextView, Any], str | None]]

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self._check = type(self).check

    def filter(self, view: TextView, stats: StageStats | None = None) -> Verdict:
        rule = self._check(view, self.cfg)
        return KEEP if rule is None else Verdict(False, reason=f"{self.name}:{rule}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg!r})"
