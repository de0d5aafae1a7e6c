"""config_cli: flags generated from config dataclasses (defaults, types, choices and help from the fields)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from bigmodel_fast.config_cli import add_dataclass_args, check_fields, from_args, positive_int, setting

MODES = ("fast", "slow")


@dataclass
class Inner:
    lr: float = setting(0.5, help="step size")
    hidden: int = setting(7, cli=False)


def _inner_small() -> Inner:
    return Inner(lr=0.25)


@dataclass
class Cfg:
    src: list[str] = setting(positional=True, help="inputs")
    out: str = setting(help="output")
    steps: int = setting(3, min=1, help="how many; 100% of them")
    mode: str = setting("fast", choices=MODES)
    late: str = setting("b", choices=lambda: ("a", "b"))
    name: str | None = setting(None, metavar="NAME", group="naming")
    resume: bool = setting(False, help="continue")
    check: bool = setting(True, help="do not check")
    inner: Inner = setting(default_factory=_inner_small, group="inner")
    extra: dict = setting(default_factory=dict, cli=False)

    def __post_init__(self):
        check_fields(self)


def _parser(cls=Cfg):
    p = argparse.ArgumentParser()
    groups = add_dataclass_args(p, cls)
    return p, groups


def _action(p: argparse.ArgumentParser, dest: str) -> argparse.Action:
    (a,) = [a for a in p._actions if a.dest == dest]
    return a


def test_default_type_choices_and_help_come_from_the_field():
    p, groups = _parser()
    steps = _action(p, "steps")
    assert steps.option_strings == ["--steps"] and steps.default == 3 and steps.type is int
    assert steps.help == "how many; 100%% of them (default: 3)"  # plain text in metadata, escaped for argparse
    assert "100% of them (default: 3)" in p.format_help()
    mode = _action(p, "mode")
    assert tuple(mode.choices) == MODES and mode.default == "fast" and mode.type is None
    assert tuple(_action(p, "late").choices) == ("a", "b")  # a callable is evaluated when the parser is built
    name = _action(p, "name")
    assert name.default is None and name.metavar == "NAME" and name in groups["naming"]._group_actions
    assert name.help.endswith("(default: none)")
    src = _action(p, "src")
    assert src.option_strings == [] and src.nargs == "+"
    out = _action(p, "out")
    assert out.required and out.option_strings == ["--out"] and out.help == "output"
    assert not [a for a in p._actions if a.dest in ("hidden", "extra", "inner")]  # cli=False and nested


def test_bool_fields_give_store_true_and_no_switches():
    p, _ = _parser()
    resume, check = _action(p, "resume"), _action(p, "check")
    assert resume.option_strings == ["--resume"] and isinstance(resume, argparse._StoreTrueAction)
    assert check.option_strings == ["--no-check"] and isinstance(check, argparse._StoreFalseAction)
    assert check.default is True and check.help == "do not check (default: check on)"
    assert resume.help == "continue (default: off)"
    args = p.parse_args(["x", "--out", "o", "--resume", "--no-check"])
    assert args.resume is True and args.check is False


def test_nested_dataclass_flags_take_the_outer_default():
    p, groups = _parser()
    lr = _action(p, "lr")
    assert lr.default == 0.25 and lr.type is float and lr in groups["inner"]._group_actions


def test_from_args_round_trips():
    p, _ = _parser()
    cfg = from_args(Cfg, p.parse_args(["a", "b", "--out", "o"]))
    assert cfg == Cfg(src=["a", "b"], out="o")
    assert cfg.inner == Inner(lr=0.25, hidden=7)
    argv = ["a", "--out", "o", "--steps", "5", "--mode", "slow", "--late", "a", "--name", "n", "--resume",
            "--no-check", "--lr", "0.1"]
    cfg = from_args(Cfg, p.parse_args(argv), extra={"k": 1})
    assert cfg == Cfg(src=["a"], out="o", steps=5, mode="slow", late="a", name="n", resume=True, check=False,
                      inner=Inner(lr=0.1), extra={"k": 1})


def test_choices_in_metadata_are_enforced_by_the_parser_and_the_config(capsys):
    p, _ = _parser()
    with pytest.raises(SystemExit):
        p.parse_args(["a", "--out", "o", "--mode", "medium"])
    assert "invalid choice: 'medium'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"mode must be 'fast' or 'slow', got 'medium'"):
        Cfg(src=["a"], out="o", mode="medium")
    with pytest.raises(ValueError, match=r"steps must be >= 1, got 0"):
        Cfg(src=["a"], out="o", steps=0)
    assert Cfg(src=["a"], out="o", name=None).name is None  # None passes the checks


def test_unknown_field_types_raise():
    @dataclass
    class Bad:
        table: dict = setting(default_factory=dict)

    with pytest.raises(TypeError, match=r"Bad.table: no command-line form.*cli=False"):
        add_dataclass_args(argparse.ArgumentParser(), Bad)


def test_bool_without_default_raises():
    @dataclass
    class Bad:
        flag: bool = setting()

    with pytest.raises(TypeError, match="Bad.flag: a bool flag needs a default"):
        add_dataclass_args(argparse.ArgumentParser(), Bad)


def test_the_trainer_configs_are_the_source_of_the_cli_defaults():
    from bigmodel_fast.cli import build_parser
    from bigmodel_fast.train.finetune import FinetuneConfig
    from bigmodel_fast.train.pretrain import PretrainConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    pre = from_args(PretrainConfig, sub.choices["pretrain"].parse_args(["--data", "d", "--out", "o"]))
    assert pre == PretrainConfig(data="d", out="o")
    ft = from_args(FinetuneConfig, sub.choices["finetune"].parse_args(["--checkpoint", "c", "--train", "t",
                                                                       "--out", "o"]))
    assert ft == FinetuneConfig(checkpoint="c", train="t", out="o")
    assert (ft.optim.lr, ft.optim.warmup_steps, ft.optim.weight_decay, ft.epochs) == (None, None, 0.01, None)  # auto
    assert pre.optim.lr == 5e-4


@dataclass
class Listed:
    texts: list[str] = setting(default_factory=list, append=True, help="a text (repeatable)")
    size: int = setting(4, type=positive_int, min=1)
    names: list[str] = setting(default_factory=list, append=True, type=str.upper)

    def __post_init__(self):
        check_fields(self)


def test_append_list_field_gives_a_repeatable_flag():
    p, _ = _parser(Listed)
    texts = _action(p, "texts")
    assert isinstance(texts, argparse._AppendAction) and texts.option_strings == ["--texts"]
    assert texts.default == [] and texts.nargs is None and not texts.required
    assert from_args(Listed, p.parse_args([])).texts == []
    args = p.parse_args(["--texts", "a b", "--texts", "c", "--names", "x"])
    assert from_args(Listed, args) == Listed(texts=["a b", "c"], names=["X"])  # type= applies to each element
    assert p.parse_args(["--texts", "z"]).texts == ["z"] and texts.default == []  # the default list is not mutated


def test_append_needs_a_list_field():
    @dataclass
    class Bad:
        n: int = setting(0, append=True)

    with pytest.raises(TypeError, match="Bad.n: append=True needs a list"):
        add_dataclass_args(argparse.ArgumentParser(), Bad)


def test_type_hook_replaces_the_field_type_and_the_parser_rejects_bad_values(capsys):
    p, _ = _parser(Listed)
    size = _action(p, "size")
    assert size.type is positive_int and size.default == 4
    assert p.parse_args(["--size", "7"]).size == 7
    for bad, shown in (("0", "got 0"), ("-3", "got -3"), ("x", "got 'x'")):
        with pytest.raises(SystemExit) as e:
            p.parse_args(["--size", bad])
        assert e.value.code == 2
        assert f"argument --size: expected an integer >= 1, {shown}" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"size must be >= 1, got 0"):  # min= checks a config built in code
        Listed(size=0)


def test_evaluate_export_predict_configs_are_the_source_of_the_cli_defaults(capsys):
    from bigmodel_fast.cli import build_parser
    from bigmodel_fast.eval.evaluate import EvaluateConfig
    from bigmodel_fast.eval.predict import PredictConfig
    from bigmodel_fast.export.bundle import ExportConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    ev = from_args(EvaluateConfig, sub.choices["evaluate"].parse_args(["--model", "m", "--data", "d"]))
    assert ev == EvaluateConfig(model="m", data="d")
    assert (ev.batch_size, ev.device, ev.text_field, ev.label_field, ev.out) == (64, "auto", "text", "label", None)
    ex = from_args(ExportConfig, sub.choices["export"].parse_args([]))
    assert ex == ExportConfig() and (ex.format, ex.runner_dir, ex.jobs) == ("torchscript", "build/bmf_runner", 0)
    pr = from_args(PredictConfig, sub.choices["predict"].parse_args(["--model", "m", "--text", "a", "--text", "b"]))
    assert pr == PredictConfig(model="m", text=["a", "b"]) and pr.max_line_bytes == 1 << 20
    for cmd, argv in (("evaluate", ["--model", "m", "--data", "d"]), ("predict", ["--model", "m"])):
        for flag in ("--batch-size", *(("--max-line-bytes",) if cmd == "predict" else ())):
            with pytest.raises(SystemExit) as e:
                sub.choices[cmd].parse_args([*argv, flag, "0"])
            assert e.value.code == 2 and "expected an integer >= 1, got 0" in capsys.readouterr().err


def test_help_shows_every_default_nested_ones_from_the_outer_field():
    p, _ = _parser()
    assert _action(p, "lr").help == "step size (default: 0.25)"  # the outer field's default_factory(), not 0.5
    assert _action(p, "mode").help == "(default: fast)"  # no help text: the note alone
    assert _action(p, "src").help == "inputs" and _action(p, "out").help == "output"  # required: no default to show
    text = " ".join(p.format_help().split())
    assert "continue (default: off)" in text and "do not check (default: check on)" in text


def test_command_line_round_trips_through_the_real_parser(tmp_path):
    """What bmf quickstart prints as 'the equivalent command' parses back into the very config it ran."""
    import dataclasses
    import shlex

    from bigmodel_fast.cli import build_parser
    from bigmodel_fast.config_cli import command_line
    from bigmodel_fast.data.prepare import PrepareConfig
    from bigmodel_fast.train.finetune import FinetuneConfig
    from bigmodel_fast.train.optim import OptimConfig
    from bigmodel_fast.train.pretrain import PretrainConfig

    cases = [
        ("prepare", PrepareConfig(inputs=["a b.txt", "c.jsonl"], out=str(tmp_path / "d"), vocab_size=900,
                                  quality=False, seed=3), {}),
        ("pretrain", PretrainConfig(data="d", out="o", arch="bert", preset="tiny", seq_len=64, max_steps=7,
                                    optim=OptimConfig(lr=1e-3, warmup_steps=2)), {"nsp": True, "progress": True}),
        ("finetune", FinetuneConfig(checkpoint="c", train="t.csv", out="o", max_len=96, patience=0,
                                    optim=OptimConfig(lr=5e-4, warmup_steps=-1)), {"progress": True}),
    ]
    parser = build_parser()
    for name, cfg, extra in cases:
        argv = command_line(f"bmf {name}", cfg)
        assert argv[:2] == ["bmf", name]
        args = parser.parse_args(shlex.split(shlex.join(argv))[1:])
        cls = type(cfg)
        back = from_args(cls, args, **{k: v for k, v in extra.items() if any(f.name == k
                                                                              for f in dataclasses.fields(cls))})
        assert dataclasses.asdict(back) == dataclasses.asdict(cfg), name
    odd = dataclasses.replace(cases[2][1])
    odd.max_len = None  # set after validation: a value no flag can express
    with pytest.raises(ValueError, match="FinetuneConfig.max_len: None has no command-line form"):
        command_line("bmf finetune", odd)
