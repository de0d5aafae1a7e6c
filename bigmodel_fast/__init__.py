"""bigmodel_fast: a language-model engine from raw text to a C++ deployment.

The pipeline lives in sub-packages named after its stages:
``data`` (sources, clean, dedup, tokenizer, shards, loader) -> ``models`` / ``nn`` / ``ops``
-> ``train`` -> ``eval`` -> ``export``. The native extension is ``bigmodel_fast._C``.
"""

__version__ = "0.1.0"
