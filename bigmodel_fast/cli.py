"""``bmf``: one command line for the whole road, one subcommand per stage.

    bmf prepare    raw files -> clean -> quality filters -> PII masking -> dedup -> tokenizer -> token shards
    bmf pretrain   BERT (MLM + NSP), GPT or LSTM (causal LM) pretraining, resumable
    bmf finetune   sequence classification from a pretraining checkpoint
    bmf evaluate   accuracy, P/R/F1, confusion matrix on a labelled file
    bmf export     TorchScript / AOTInductor bundle of a classifier or GPT LM; builds the C++ runner
    bmf predict    text in, label and probabilities out
    bmf quickstart all of the above on the embedded sample data
"""

from __future__ import annotations

import argparse
import json
import sys

from .config_cli import add_dataclass_args, from_args


def _add_no_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_prepare(args) -> int:
    from .data.prepare import PrepareConfig, prepare
    from .data.quality import QualityConfig
    from .jsonio import read_json

    extra = {"progress": not args.no_progress}
    if args.quality_config:
        extra["quality_config"] = QualityConfig.from_dict(read_json(args.quality_config, "quality-filter config"))
    stats = prepare(from_args(PrepareConfig, args, **extra))
    shown = ("read", "clean", "boilerplate", "quality", "pii", "dedup", "train", "valid", "seconds")
    print(json.dumps({k: stats[k] for k in shown if k in stats}, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}/stats.json")
    return 0


def cmd_pretrain(args) -> int:
    from .jsonio import dumps
    from .train.pretrain import PretrainConfig, pretrain

    summary = pretrain(from_args(PretrainConfig, args, progress=not args.no_progress, nsp=not args.no_nsp))
    print(dumps(summary, indent=2))
    return 0


def cmd_finetune(args) -> int:
    from .jsonio import dumps
    from .train.finetune import FinetuneConfig, finetune

    summary = finetune(from_args(FinetuneConfig, args, progress=not args.no_progress))
    print(dumps(summary, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .eval.evaluate import evaluate
    from .eval.metrics import format_report

    report = evaluate(args.model, args.data, out=args.out, text_field=args.text_field, label_field=args.label_field,
                      batch_size=args.batch_size, device=args.device)
    print(format_report(report))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_export(args) -> int:
    if not args.checkpoint and not args.build_runner:
        print("bmf export: error: give --checkpoint CKPT --out DIR (export a bundle) and/or --build-runner "
              "(build the C++ runner)", file=sys.stderr)
        return 2
    if args.checkpoint and not args.out:
        print("bmf export: error: --out DIR is required with --checkpoint", file=sys.stderr)
        return 2
    from .export.runner import RunnerBuildError, build_runner
    from .export.torchscript import ExportError

    try:
        if args.checkpoint:
            from .export.bundle import export_bundle, read_bundle

            out = export_bundle(args.checkpoint, args.out, format=args.format)
            info = read_bundle(out)
            print(f"exported {args.format} bundle (task {info['task']}) to {out}")
        if args.build_runner:
            binary = build_runner(args.runner_dir, jobs=args.jobs)
            print(f"built the C++ runner: {binary}")
            if args.checkpoint:
                print(f"run it:  {binary} {args.out} --input texts.txt")
    except (ExportError, RunnerBuildError) as e:
        print(f"bmf export: error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_predict(args) -> int:
    from .eval.predict import Predictor
    from .eval.stream import BatchWriter, StreamStats, check_input, open_input, predict_stream, silence_stdout

    if not args.text and not args.input:
        print("bmf predict: no text given (use --text TEXT or --input FILE, - for stdin)", file=sys.stderr)
        return 2
    name = "stdin" if args.input == "-" else args.input
    if args.input:
        check_input(args.input)  # before the model is loaded
    predictor = Predictor(args.model, device=args.device)
    stats = StreamStats()
    try:
        writer = BatchWriter(predictor, sys.stdout, args.batch_size, stats)
        for text in args.text:
            writer.add(text)
        writer.flush()
        if args.input:
            with open_input(args.input) as stream:
                predict_stream(predictor, stream, sys.stdout, args.batch_size, args.max_line_bytes, stats, name)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        silence_stdout()
        return 1
    if args.input:
        print(f"bmf predict: {stats.lines} lines from {name}, "
              f"{stats.truncated} truncated to --max-line-bytes {args.max_line_bytes}", file=sys.stderr)
    if stats.nonfinite:
        print(f"bmf predict: warning: {stats.nonfinite} predictions were not finite (label null); the model's "
              f"weights are probably NaN/inf", file=sys.stderr)
    return 0


def cmd_quickstart(args) -> int:
    from .quickstart import QuickstartConfig, quickstart

    quickstart(from_args(QuickstartConfig, args, progress=not args.no_progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bmf`` parser. prepare/pretrain/finetune/quickstart flags come from their config dataclasses."""
    from .data.prepare import FILTER_GROUP, PrepareConfig
    from .quickstart import QuickstartConfig
    from .train.finetune import FinetuneConfig
    from .train.pretrain import PretrainConfig

    parser = argparse.ArgumentParser(prog="bmf", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="raw text -> clean -> filter -> dedup -> tokenizer -> token shards")
    groups = add_dataclass_args(p, PrepareConfig)
    groups[FILTER_GROUP].add_argument(
        "--quality-config", help="JSON file of quality-filter settings, e.g. "
        '{"c4": {"enabled": false}, "gopher_quality": {"min_words": 20}}')
    _add_no_progress(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("pretrain", help="pretrain a BERT (MLM+NSP), GPT or LSTM (causal LM)")
    add_dataclass_args(p, PretrainConfig)
    p.add_argument("--no-nsp", action="store_true", help="BERT without next-sentence prediction")
    _add_no_progress(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="sequence classification from a pretraining checkpoint")
    add_dataclass_args(p, FinetuneConfig)
    _add_no_progress(p)
    p.set_defaults(func=cmd_finetune)

    from .eval.stream import DEFAULT_MAX_LINE_BYTES, positive_int
    from .export.bundle import FORMATS

    p = sub.add_parser("evaluate", help="metrics of a classifier on a labelled file")
    p.add_argument("--model", required=True, help="classifier checkpoint or exported bundle directory")
    p.add_argument("--data", required=True)
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="export a classifier or GPT LM as a deployment bundle; build the C++ runner")
    p.add_argument("--checkpoint", help="fine-tuned classifier checkpoint, or GPT pretraining checkpoint (LM)")
    p.add_argument("--out", help="bundle directory")
    p.add_argument("--format", default="torchscript", choices=tuple(FORMATS),
                   help="torchscript: model.pt (torch.jit); aoti: model.pt2 (torch.export + AOTInductor)")
    p.add_argument("--build-runner", action="store_true", help="build the C++ runner bmf_runner with CMake")
    p.add_argument("--runner-dir", default="build/bmf_runner", help="CMake build directory of the runner")
    p.add_argument("--jobs", type=int, default=0, help="parallel compile jobs for --build-runner (0: all cores)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="label and probabilities for texts")
    p.add_argument("--model", required=True, help="classifier checkpoint or exported bundle directory")
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    p.add_argument("--input", help="a file with one text per line, - for stdin; read and answered in batches "
                   "(a batch is answered when full, or at once when the input pauses)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="texts per model call")
    p.add_argument("--max-line-bytes", type=positive_int, default=DEFAULT_MAX_LINE_BYTES,
                   help="an input line longer than this keeps its first MAX_LINE_BYTES bytes (cut back to a whole "
                   "UTF-8 character) and the rest is skipped, as bmf_runner does; default %(default)s (1 MiB)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("quickstart", help="the whole road on the embedded sample data")
    add_dataclass_args(p, QuickstartConfig)
    _add_no_progress(p)
    p.set_defaults(func=cmd_quickstart)
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
