"""Quality filter families used by :mod:`bigmodel_fast.data.quality` (one module per family).

* :mod:`.gopher_quality`: word count, mean word length, symbols, bullets, ellipses, alphabetic words, stop words;
* :mod:`.gopher_repetition`: duplicate lines/paragraphs, top and duplicated word n-grams;
* :mod:`.c4`: line removal (terminal punctuation, short lines, javascript, cookie policy) and document rules;
* :mod:`.fineweb`: line punctuation, short lines, duplicated line characters, list-like documents;
* :mod:`._text`: the per-document :class:`~._text.TextView` (lines, tokens, script) they share.
"""
from .c4 import C4Config
from .fineweb import FineWebConfig
from .gopher_quality import GopherQualityConfig
from .gopher_repetition import GopherRepetitionConfig

__all__ = ["C4Config", "FineWebConfig", "GopherQualityConfig", "GopherRepetitionConfig"]
