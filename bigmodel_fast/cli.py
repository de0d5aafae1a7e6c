"""``bmf``: one command line for the whole road, one subcommand per stage.

    bmf prepare    raw files -> clean -> quality filters -> PII masking -> dedup -> tokenizer -> token shards
    bmf pretrain   BERT (MLM + NSP), GPT or LSTM (causal LM) pretraining, resumable
    bmf finetune   sequence classification from a pretraining checkpoint
    bmf evaluate   accuracy, P/R/F1, confusion matrix on a labelled file
    bmf export     TorchScript / AOTInductor bundle of a classifier or GPT LM; builds the C++ runner
    bmf predict    text in, label and probabilities out (lines, JSONL or CSV)
    bmf generate   prompt in, GPT continuation out (greedy / top-k / temperature, the C++ runner's sampling)
    bmf quickstart all of the above on the embedded sample data
    bmf import-hf  a local Hugging Face BERT / RoBERTa / GPT-2 directory -> bmf checkpoint
    bmf export-hf  bmf checkpoint -> Hugging Face directory (config.json, model.safetensors, tokenizer)
    bmf plot       training curves (loss, held-out loss, lr, tokens/s, MFU) of run directories as a PNG
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .config_cli import add_dataclass_args, from_args


def _add_no_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage lines (default: off)")


def cmd_prepare(args) -> int:
    from .data.prepare import PrepareConfig, prepare
    from .jsonio import read_json

    extra = {"progress": not args.no_progress}
    if args.quality_config:  # overrides, merged on top of --quality-preset by PrepareConfig
        extra["quality_config"] = read_json(args.quality_config, "quality-filter config")
    stats = prepare(from_args(PrepareConfig, args, **extra))
    shown = ("read", "clean", "boilerplate", "quality", "pii", "dedup", "train", "valid", "seconds")
    print(json.dumps({k: stats[k] for k in shown if k in stats}, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}/stats.json")
    return 0


def cmd_pretrain(args) -> int:
    from .train.pretrain import PretrainConfig, pretrain
    from .train.pretrain_stats import format_summary

    summary = pretrain(from_args(PretrainConfig, args, progress=not args.no_progress, nsp=not args.no_nsp))
    if _is_rank0():  # under torchrun the other ranks print nothing
        print(format_summary(summary))  # the same summary as JSON: the last record of RUN/metrics.jsonl
    return 0


def _is_rank0() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def cmd_finetune(args) -> int:
    from .jsonio import dumps
    from .train.finetune import FinetuneConfig, finetune

    summary = finetune(from_args(FinetuneConfig, args, progress=not args.no_progress))
    if _is_rank0():
        print(dumps(summary, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .eval.evaluate import EvaluateConfig, evaluate, format_evaluation

    cfg = from_args(EvaluateConfig, args)
    report = evaluate(cfg.model, cfg.data, out=cfg.out, text_field=cfg.text_field, label_field=cfg.label_field,
                      batch_size=cfg.batch_size, device=cfg.device, plots=cfg.plots, baseline=cfg.baseline)
    print(format_evaluation(report))
    if cfg.plots:
        print(f"wrote {len(report.get('plots', {}))} figures to {cfg.plots}")
    if cfg.out:
        print(f"wrote {cfg.out}")
    return 0


def cmd_export(args) -> int:
    from .export.bundle import ExportConfig

    cfg = from_args(ExportConfig, args)
    if not cfg.checkpoint and not cfg.build_runner:
        print("bmf export: error: give --checkpoint CKPT --out DIR (export a bundle) and/or --build-runner "
              "(build the C++ runner)", file=sys.stderr)
        return 2
    if cfg.checkpoint and not cfg.out:
        print("bmf export: error: --out DIR is required with --checkpoint", file=sys.stderr)
        return 2
    from .stages import stage_lines

    with stage_lines(not args.no_progress):  # the AOTInductor and CMake stage lines on stderr
        return _export_and_build(cfg)


def _export_and_build(cfg) -> int:
    from .export.runner import RunnerBuildError, build_runner
    from .export.torchscript import ExportError

    try:
        if cfg.checkpoint:
            from .export.bundle import export_bundle, read_bundle

            out = export_bundle(cfg.checkpoint, cfg.out, format=cfg.format)
            info = read_bundle(out)
            print(f"exported {cfg.format} bundle (task {info['task']}) to {out}")
        if cfg.build_runner:
            binary = build_runner(cfg.runner_dir, jobs=cfg.jobs)
            print(f"built the C++ runner: {binary}")
            if cfg.checkpoint:
                print(f"run it:  {binary} {cfg.out} --input texts.txt")
    except (ExportError, RunnerBuildError) as e:
        print(f"bmf export: error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_predict(args) -> int:
    from .eval.inputs import InputStats, input_format, output_row, predict_records, show_progress
    from .eval.predict import PredictConfig, Predictor
    from .eval.stream import BatchWriter, StreamStats, check_input, open_input, silence_stdout
    from .eval.token_predict import TokenPredictor, is_token_model

    cfg = from_args(PredictConfig, args)
    if not cfg.text and not cfg.input:
        print("bmf predict: no text given (use --text TEXT or --input FILE, - for stdin)", file=sys.stderr)
        return 2
    name = "stdin" if cfg.input == "-" else cfg.input
    fmt = input_format(cfg.input, cfg.format) if cfg.input else "lines"
    if cfg.input:
        check_input(cfg.input)  # before the model is loaded
    predictor = (TokenPredictor if is_token_model(cfg.model) else Predictor)(cfg.model, device=cfg.device)
    stats, input_stats = StreamStats(), InputStats()
    try:
        writer = BatchWriter(predictor, sys.stdout, cfg.batch_size, stats,
                             row=lambda text, extra, result: output_row(text, extra, result, echo=cfg.echo))
        for text in cfg.text:
            writer.add(text)
        writer.flush()
        if cfg.input:
            with open_input(cfg.input) as stream:
                predict_records(predictor, stream, sys.stdout, fmt=fmt, text_field=cfg.text_field, echo=cfg.echo,
                                batch_size=cfg.batch_size, max_line_bytes=cfg.max_line_bytes, stats=stats,
                                input_stats=input_stats, name=name, progress=show_progress(args.no_progress))
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        silence_stdout()
        return 1
    if cfg.input:
        rows = "" if fmt == "lines" else f"{input_stats.records} {fmt} records ({input_stats.blank} blank skipped) in "
        print(f"bmf predict: {rows}{stats.lines} lines from {name}, "
              f"{stats.truncated} truncated to --max-line-bytes {cfg.max_line_bytes}", file=sys.stderr)
    if stats.nonfinite:
        print(f"bmf predict: warning: {stats.nonfinite} predictions were not finite (label null); the model's "
              f"weights are probably NaN/inf", file=sys.stderr)
    return 0


def cmd_generate(args) -> int:
    from .eval.stream import silence_stdout
    from .generate import GenerateConfig, run_generate

    try:
        run_generate(from_args(GenerateConfig, args))
    except BrokenPipeError:
        silence_stdout()
        return 1
    return 0


def cmd_quickstart(args) -> int:
    from .quickstart import QuickstartConfig, quickstart
    from .stages import stage_lines

    with stage_lines(not args.no_progress):
        quickstart(from_args(QuickstartConfig, args, progress=not args.no_progress))
    return 0


def cmd_import_hf(args) -> int:
    from .hf.cli_config import ImportHFConfig
    from .hf.import_hf import import_hf
    from .jsonio import dumps

    cfg = from_args(ImportHFConfig, args)
    print(dumps(import_hf(cfg.src, cfg.out), indent=2))
    return 0


def cmd_export_hf(args) -> int:
    from .hf.cli_config import ExportHFConfig
    from .hf.export_hf import export_hf
    from .jsonio import dumps

    cfg = from_args(ExportHFConfig, args)
    print(dumps(export_hf(cfg.checkpoint, cfg.out), indent=2))
    return 0


def cmd_plot(args) -> int:
    from .eval.run_plots import PlotConfig, plot_runs

    cfg = from_args(PlotConfig, args)  # checks for matplotlib before reading anything
    result = plot_runs(cfg.runs, cfg.out)
    print(f"wrote {result['path']} ({', '.join(result['panels'])})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bmf`` parser. Every subcommand's flags come from its config dataclass (a few hand-written switches
    such as ``--no-progress`` aside)."""
    from .data.prepare import FILTER_GROUP, PrepareConfig
    from .eval.evaluate import EvaluateConfig
    from .eval.predict import PredictConfig
    from .eval.run_plots import PlotConfig
    from .export.bundle import ExportConfig
    from .generate import GenerateConfig
    from .hf.cli_config import ExportHFConfig, ImportHFConfig
    from .quickstart import QuickstartConfig
    from .train.finetune import FinetuneConfig
    from .train.pretrain import PretrainConfig

    parser = argparse.ArgumentParser(prog="bmf", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    extra_flags = {  # the flags that are not config fields, added after the generated ones
        "prepare": lambda p, groups: groups[FILTER_GROUP].add_argument(
            "--quality-config", help="JSON file of quality-filter settings on top of --quality-preset, e.g. "
            '{"c4": {"enabled": false}, "gopher_quality": {"min_words": 20}} (default: none)'),
        "pretrain": lambda p, groups: p.add_argument("--no-nsp", action="store_true",
                                                     help="BERT without next-sentence prediction (default: off)"),
    }
    commands = [  # name, help, config dataclass (its fields are the flags), handler, takes --no-progress
        ("prepare", "raw text -> clean -> filter -> dedup -> tokenizer -> token shards", PrepareConfig, cmd_prepare,
         True),
        ("pretrain", "pretrain a BERT (MLM+NSP), GPT or LSTM (causal LM)", PretrainConfig, cmd_pretrain, True),
        ("finetune", "sequence classification from a pretraining checkpoint", FinetuneConfig, cmd_finetune, True),
        ("evaluate", "metrics of a classifier on a labelled file", EvaluateConfig, cmd_evaluate, False),
        ("export", "export a classifier or GPT LM as a deployment bundle; build the C++ runner", ExportConfig,
         cmd_export, True),
        ("predict", "label and probabilities for texts", PredictConfig, cmd_predict, True),
        ("generate", "continue prompts with a GPT checkpoint or lm bundle (greedy / top-k, as bmf_runner)",
         GenerateConfig, cmd_generate, False),
        ("quickstart", "the whole road on the embedded sample data", QuickstartConfig, cmd_quickstart, True),
        ("import-hf", "import a local Hugging Face BERT / RoBERTa / GPT-2 directory", ImportHFConfig, cmd_import_hf,
         False),
        ("export-hf", "write a bmf checkpoint as a Hugging Face directory", ExportHFConfig, cmd_export_hf, False),
        ("plot", "training curves of run directories (their metrics.jsonl) as one PNG", PlotConfig, cmd_plot, False),
    ]
    for name, help_text, config, handler, no_progress in commands:
        p = sub.add_parser(name, help=help_text)
        groups = add_dataclass_args(p, config)
        if name in extra_flags:
            extra_flags[name](p, groups)
        if no_progress:
            _add_no_progress(p)
        p.set_defaults(func=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .train.errors import NonFiniteError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NonFiniteError as e:  # training diverged: not bad input, but nothing non-finite was saved
        print(f"bmf {args.command}: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        print(f"bmf {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
