"""Quality filter families used by :mod:`bigmodel_fast.data.quality` (one module per family).

* :mod:`.gopher_quality`: word count, mean word length, symbols, bullets, ellipses, alphabetic words, stop words;
* :mod:`.gopher_repetition`: duplicate lines/paragraphs, top and duplicated word n-grams;
* :mod:`.c4`: line removal (terminal punctuation, short lines, javascript, cookie policy) and document rules;
* :mod:`.fineweb`: line punctuation, short lines, duplicated line characters, list-like documents;
* :mod:`.presets`: the ``web``/``curated``/``off`` presets and the config switch of every rule;
* :mod:`.base`: the interface they implement (:class:`~.base.DocFilter`, :class:`~.base.Verdict`);
* :mod:`._text`: the per-document :class:`~._text.TextView` (lines, tokens, script) they share.

:data:`FAMILIES` registers each family's filter class in chain order under its name, which is also the name of its
nested config in :class:`~bigmodel_fast.data.quality.QualityConfig` (the class's ``Config``) and the prefix of its
drop reasons (one per entry of the class's ``RULES``). A new family is one module plus one entry here and its config
field in ``QualityConfig``.
"""
from .base import KEEP, DocFilter, RuleFilter, Verdict
from .c4 import C4Config, C4Filter
from .fineweb import FineWebConfig, FineWebFilter
from .gopher_quality import GopherQualityConfig, GopherQualityFilter
from .gopher_repetition import GopherRepetitionConfig, GopherRepetitionFilter

__all__ = ["C4Config", "FineWebConfig", "GopherQualityConfig", "GopherRepetitionConfig", "FAMILIES", "DocFilter",
           "Verdict", "KEEP", "RuleFilter", "GopherQualityFilter", "GopherRepetitionFilter", "C4Filter",
           "FineWebFilter"]

FAMILIES: dict[str, type] = {
    cls.name: cls for cls in (GopherQualityFilter, GopherRepetitionFilter, C4Filter, FineWebFilter)
}
