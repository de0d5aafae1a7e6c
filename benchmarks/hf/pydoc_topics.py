"""English topic classification data from the Python 3.11 documentation (Debian ``python3.11-doc``, PSF licence).

Each paragraph (a blank-line separated block of a ``.rst.txt`` source, at least ``min_words`` words, whitespace
collapsed, reST markup left as is) is labelled with the documentation part its file belongs to:

``library`` (library reference), ``c-api`` (C API reference), ``reference`` (language reference), ``howto``,
``tutorial`` (the tutorial and the FAQ: prose for newcomers) and ``whatsnew`` (release notes).

Files, not paragraphs, are split between train and test (every ``test_every``-th file of a part, in sorted order,
goes to test), so no test paragraph shares a page with a training paragraph. Per label, the first
``train_per_label`` / ``test_per_label`` paragraphs of a seeded shuffle are kept, so the classes are balanced.
The package is fetched by ``benchmarks/data/fetch_pydoc.py`` (``apt-get download``, no hub).
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from fetch_pydoc import ensure_pydoc  # noqa: E402

PARTS = {"library": ["library"], "c-api": ["c-api"], "reference": ["reference"], "howto": ["howto"],
         "tutorial": ["tutorial", "faq"], "whatsnew": ["whatsnew"]}
_WS = re.compile(r"\s+")


def _paragraphs(path: Path, min_words: int) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    blocks = (_WS.sub(" ", b).strip() for b in re.split(r"\n\s*\n", text))
    return [b for b in blocks if len(b.split(" ")) >= min_words]


def topic_split(train_per_label: int = 400, test_per_label: int = 200, *, min_words: int = 12,
                test_every: int = 4, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """``(train rows, test rows)``, each ``{"text", "label", "source"}``, balanced per label (fewer when a part
    has fewer paragraphs), shuffled with ``seed``."""
    src = ensure_pydoc()
    rng = random.Random(seed)
    train, test = [], []
    for label, dirs in PARTS.items():
        files = sorted(f for d in dirs for f in (src / d).rglob("*.rst.txt"))
        split = {"train": [], "test": []}
        for i, f in enumerate(files):
            side = "test" if i % test_every == test_every - 1 else "train"
            split[side] += [{"text": p, "label": label, "source": str(f.relative_to(src))}
                            for p in _paragraphs(f, min_words)]
        for side, want, out in (("train", train_per_label, train), ("test", test_per_label, test)):
            rows = split[side]
            rng.shuffle(rows)
            out += rows[:want]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


if __name__ == "__main__":
    tr, te = topic_split()
    from collections import Counter

    print(len(tr), len(te), Counter(r["label"] for r in tr), Counter(r["label"] for r in te))
