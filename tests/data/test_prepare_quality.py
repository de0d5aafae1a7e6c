"""`bmf prepare` with quality presets: per-source counts, dropped samples, the drop warning, PII counters and the
new flags' bad input (issue 14, point 6). Each run: a few small documents, vocabulary 400, well under a second."""

import json
from pathlib import Path

import pytest

from bigmodel_fast.cli import main
from bigmodel_fast.data.prepare import PrepareConfig, prepare
from bigmodel_fast.data.quality import QualityConfig, preset_config

from .test_quality_presets import LOREM, SPAM, TECH_DOC

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
PROSE = LOREM.split("\n\n")[0]  # English prose every preset keeps


def _prose(i: int) -> str:
    """Distinct prose documents (no two near-duplicates): the shared paragraph plus a numbered tail."""
    tail = " ".join(WORDS[(i * 5 + j) % len(WORDS)] + str(i) for j in range(15))
    return f"{PROSE} Document {i} ends with these words: {tail}."


def _corpus(root: Path) -> tuple[list[str], dict]:
    """An input directory with two sub-directories and an explicit JSONL file; returns the inputs and what each
    source holds."""
    (root / "docs" / "guide").mkdir(parents=True)
    (root / "docs" / "api").mkdir(parents=True)
    for i in range(3):
        (root / "docs" / "guide" / f"p{i}.txt").write_text(_prose(i), encoding="utf-8")
    (root / "docs" / "guide" / "spam.txt").write_text(SPAM, encoding="utf-8")
    (root / "docs" / "api" / "config.rst").write_text(TECH_DOC, encoding="utf-8")
    (root / "docs" / "api" / "tiny.txt").write_text("x", encoding="utf-8")  # dropped by cleaning (too short)
    rows = [_prose(10), _prose(10), _prose(11), LOREM, SPAM.replace("pills", "watches")]
    jsonl = root / "more.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in rows) + "\n", encoding="utf-8")
    return [str(root / "docs"), str(jsonl)], {"guide": 4, "api": 2, "jsonl": 5}


def _run(tmp_path, preset, **kw):
    inputs, _ = _corpus(tmp_path / "in")
    return prepare(PrepareConfig(inputs=inputs, out=str(tmp_path / f"out_{preset}"), vocab_size=400,
                                 valid_fraction=0.0, dedup="exact", quality_preset=preset, progress=False, **kw))


def test_per_source_counts_add_up_to_the_totals(tmp_path):
    stats = _run(tmp_path, "web")
    src = stats["sources"]
    root = tmp_path / "in"
    assert set(src) == {str(root / "docs" / "guide"), str(root / "docs" / "api"), str(root / "more.jsonl")}
    assert src[str(root / "docs" / "guide")]["documents"] == 4 and src[str(root / "more.jsonl")]["documents"] == 5
    total = lambda k: sum(e[k] for e in src.values())  # noqa: E731
    assert total("documents") == stats["read"]["documents"] == 11
    assert total("kept") == stats["train"]["documents"] + stats["valid"]["documents"]
    for e in src.values():
        assert e["documents"] == e["kept"] + sum(e["dropped"].values())
    drops: dict[str, int] = {}
    for e in src.values():
        for r, n in e["dropped"].items():
            drops[r] = drops.get(r, 0) + n
    q = stats["quality"]
    assert {r: n for r, n in drops.items() if ":" in r and not r.startswith(("dedup:", "boilerplate:"))} == \
        q["dropped"]
    assert drops["clean"] == stats["clean"]["dropped_empty"] + stats["clean"]["dropped_short"] == 1
    assert drops["dedup:exact"] == stats["dedup"]["duplicates"] == 1
    assert src[str(root / "docs" / "api")]["dropped"] == {"clean": 1, "c4:min_sentences": 1}  # web drops the doc page
    assert sum(e["chars"] for e in src.values()) == sum(
        len(p.read_text(encoding="utf-8")) for p in (root / "docs").rglob("*.*")) + sum(
        len(json.loads(line)["text"]) for line in (root / "more.jsonl").read_text(encoding="utf-8").splitlines())
    # what the run wrote is what it returned
    assert json.loads((tmp_path / "out_web" / "stats.json").read_text(encoding="utf-8"))["sources"] == src


def test_curated_keeps_the_doc_page_and_still_drops_the_junk(tmp_path):
    web, cur = _run(tmp_path / "w", "web"), _run(tmp_path / "c", "curated")
    api = str(tmp_path / "c" / "in" / "docs" / "api")
    assert cur["sources"][api]["dropped"] == {"clean": 1} and cur["sources"][api]["kept"] == 1
    assert cur["train"]["documents"] == web["train"]["documents"] + 1
    for stats in (web, cur):
        assert sum(n for r, n in stats["quality"]["dropped"].items() if r.startswith("gopher_repetition:")) == 2
        assert stats["quality"]["dropped"]["c4:lorem_ipsum"] == 1
    assert cur["config"]["quality_preset"] == "curated"
    assert json.loads(json.dumps(cur["config"]["quality_config"])) == json.loads(
        json.dumps(preset_config("curated").to_dict()))


def test_dropped_samples_carry_their_source(tmp_path):
    stats = _run(tmp_path, "web")
    samples = stats["dropped_samples"]
    root = tmp_path / "in"
    assert set(samples) == set(stats["quality"]["dropped"])
    (lorem,) = samples["c4:lorem_ipsum"]
    assert lorem["source"] == f"{root / 'more.jsonl'}:4" and lorem["chars"] == len(LOREM)
    assert lorem["text"] == LOREM[:300]
    spam_sources = sorted(s["source"] for r, v in samples.items() if r.startswith("gopher_repetition:") for s in v)
    assert spam_sources == sorted([str(root / "docs" / "guide" / "spam.txt"), f"{root / 'more.jsonl'}:5"])
    assert all(len(s["text"]) <= 300 for v in samples.values() for s in v)


def test_samples_stop_at_five_per_rule(tmp_path):
    rows = [f"too short {i}: only a few words here" for i in range(8)] + [_prose(i) for i in range(3)]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in rows) + "\n", encoding="utf-8")
    stats = prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "o"), vocab_size=400,
                                  valid_fraction=0.0, dedup="none", progress=False))
    assert stats["quality"]["dropped"] == {"gopher_quality:word_count": 8}
    got = stats["dropped_samples"]["gopher_quality:word_count"]
    assert [s["source"].rsplit(":", 1)[1] for s in got] == ["1", "2", "3", "4", "5"]


def test_drop_warning_goes_to_stderr_and_stats(tmp_path, capsys):
    stats = _run(tmp_path, "web")  # 10 documents reach the quality stage: 2 spam pages, 1 lorem, 1 doc page
    err = capsys.readouterr().err
    (w,) = stats["warnings"]  # only the rule above 10%
    assert w.startswith("quality rule gopher_repetition:dup_line_frac dropped 2 of 10 documents (20.0%")
    assert "see dropped_samples in stats.json" in w and f"bmf prepare: warning: {w}" in err
    quiet = _run(tmp_path / "q", "web", warn_drop_share=1.0)
    assert "warnings" not in quiet and "warning" not in capsys.readouterr().err


def test_warning_fires_above_the_share_and_not_below_in_a_run(tmp_path, capsys):
    # 1 of 10 documents entering the quality stage is dropped by c4:lorem_ipsum (10%)
    rows = [_prose(i) for i in range(9)] + [LOREM]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in rows) + "\n", encoding="utf-8")

    def run(share):
        out = tmp_path / f"o{share}"
        return prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(out), vocab_size=400,
                                     valid_fraction=0.0, dedup="none", quality_preset="curated",
                                     warn_drop_share=share, progress=False))

    assert run(0.10).get("warnings") is None  # exactly the share: no warning
    (w,) = run(0.09)["warnings"]
    assert w.startswith("quality rule c4:lorem_ipsum dropped 1 of 10 documents (10.0%, more than --warn-drop-share "
                        "0.09)") and '{"c4": {"drop_lorem_ipsum": false}}' in w
    assert "quality rule c4:lorem_ipsum" in capsys.readouterr().err


def test_pii_counters_are_in_stats_json(tmp_path):
    rows = [_prose(0) + " Mail jane.doe@example.org today.", _prose(1)]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in rows) + "\n", encoding="utf-8")
    prepare(PrepareConfig(inputs=[str(tmp_path / "in.jsonl")], out=str(tmp_path / "o"), vocab_size=400,
                          valid_fraction=0.0, dedup="none", progress=False))
    pii = json.loads((tmp_path / "o" / "stats.json").read_text(encoding="utf-8"))["pii"]
    assert (pii["seen"], pii["kept"], pii["modified"], pii["masked"]["email"]) == (2, 2, 1, 1)


def test_preset_off_and_config_objects(tmp_path):
    cfg = PrepareConfig(inputs=["x"], out="o", quality_preset="off")
    assert cfg.quality is False
    cfg = PrepareConfig(inputs=["x"], out="o", quality_preset="curated", quality_config={"c4": {"enabled": False}})
    assert cfg.quality_config.c4.enabled is False and cfg.quality_config.gopher_quality.min_stop_words is None
    assert PrepareConfig(inputs=["x"], out="o").quality_config == QualityConfig()
    explicit = QualityConfig.from_dict({"fineweb": {"enabled": False}})
    assert PrepareConfig(inputs=["x"], out="o", quality_config=explicit).quality_config is explicit
    with pytest.raises(ValueError, match="give a dict of overrides"):
        PrepareConfig(inputs=["x"], out="o", quality_preset="curated", quality_config=explicit)


def _cli(tmp_path, *extra) -> list[str]:
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": _prose(0)}) + "\n", encoding="utf-8")
    return ["prepare", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o"), "--vocab-size", "400",
            "--dedup", "none", "--no-progress", *extra]


def test_cli_bad_preset_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(_cli(tmp_path, "--quality-preset", "webby"))
    assert e.value.code == 2
    assert "invalid choice: 'webby' (choose from" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_cli_warn_drop_share_out_of_range(tmp_path, capsys, value):
    assert main(_cli(tmp_path, "--warn-drop-share", value)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bmf prepare: error: warn_drop_share must be in [0, 1]")


def test_cli_warn_drop_share_not_a_number(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(_cli(tmp_path, "--warn-drop-share", "lots"))
    assert e.value.code == 2


@pytest.mark.parametrize("content, message", [
    ('["c4"]', "expected a JSON object"),
    ('{"c4": {"nope": 1}}', "QualityConfig.c4: unknown keys ['nope']"),
    ('{"gopher": {}}', "QualityConfig: unknown keys ['gopher']"),
])
def test_cli_bad_quality_config_on_top_of_a_preset(tmp_path, capsys, content, message):
    (tmp_path / "q.json").write_text(content, encoding="utf-8")
    assert main(_cli(tmp_path, "--quality-preset", "curated", "--quality-config", str(tmp_path / "q.json"))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_quality_config_goes_on_top_of_the_preset(tmp_path):
    (tmp_path / "q.json").write_text('{"gopher_quality": {"min_stop_words": 2}}', encoding="utf-8")
    assert main(_cli(tmp_path, "--quality-preset", "curated", "--quality-config", str(tmp_path / "q.json"))) == 0
    cfg = json.loads((tmp_path / "o" / "stats.json").read_text(encoding="utf-8"))["config"]
    assert cfg["quality_preset"] == "curated" and cfg["quality_config"]["gopher_quality"]["min_stop_words"] == 2
    assert cfg["quality_config"]["gopher_quality"]["max_bullet_lines_ratio"] is None
