"""Real English prose for the dedup benchmark: the Python 3.11 documentation sources, split into paragraphs.

Source: Debian's ``python3.11-doc`` package (PSF documentation licence; see
``bigmodel_fast/data/samples/NOTICE.md``). ``ensure_pydoc(cache_dir)`` reuses ``cache_dir`` when it already
holds the extracted package, otherwise runs ``apt-get download python3.11-doc`` there and extracts it with
``dpkg-deb -x`` (Debian/Ubuntu only). The reStructuredText sources (``*.rst.txt``) live under
``usr/share/doc/python3.11/html/_sources/``.

Run: ``python benchmarks/data/fetch_pydoc.py [--cache-dir DIR]`` prints the paragraph count and size.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = "python3.11-doc"
SOURCES = Path("usr/share/doc/python3.11/html/_sources")
DEFAULT_CACHE = Path(os.environ.get("BMF_PYDOC_DIR", Path.home() / ".cache" / "bigmodel_fast" / "pydoc"))

_WS = re.compile(r"\s+")


def ensure_pydoc(cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    """The ``_sources`` directory of the extracted package under ``cache_dir``, downloading it if missing."""
    cache = Path(cache_dir)
    src = cache / SOURCES
    if src.is_dir() and any(src.rglob("*.rst.txt")):
        return src
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        try:
            subprocess.run(["apt-get", "download", PACKAGE], cwd=cache, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(
                f"fetch_pydoc: cannot download {PACKAGE} into {cache} ({exc}); on a Debian/Ubuntu machine run "
                f"`apt-get update` first, or pass --cache-dir pointing at an extracted copy"
            ) from exc
        debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(cache)], check=True)
    if not src.is_dir():
        raise SystemExit(f"fetch_pydoc: {debs[-1]} has no {SOURCES}")
    return src


def paragraphs(src: Path, *, min_words: int = 8) -> list[str]:
    """Paragraphs (blank-line separated blocks, whitespace collapsed) of every ``*.rst.txt`` under ``src``,
    in sorted file order; blocks with fewer than ``min_words`` words are dropped. Markup is left as is."""
    out: list[str] = []
    for path in sorted(src.rglob("*.rst.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for block in re.split(r"\n\s*\n", text):
            para = _WS.sub(" ", block).strip()
            if len(para.split(" ")) >= min_words:
                out.append(para)
    return out


def load_paragraphs(cache_dir: str | Path = DEFAULT_CACHE, *, min_words: int = 8) -> list[str]:
    return paragraphs(ensure_pydoc(cache_dir), min_words=min_words)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where the package is (or goes) extracted")
    ap.add_argument("--min-words", type=int, default=8)
    args = ap.parse_args(argv)
    paras = load_paragraphs(args.cache_dir, min_words=args.min_words)
    size = sum(len(p.encode("utf-8")) for p in paras)
    print(f"{len(paras)} paragraphs, {size / 1e6:.1f} MB, mean {size / max(1, len(paras)):.0f} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
