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
from dataclasses import fields

from .train.optim import SCHEDULES, OptimConfig


def _add_optim(p: argparse.ArgumentParser, defaults: OptimConfig) -> None:
    g = p.add_argument_group("optimizer")
    g.add_argument("--lr", type=float, default=defaults.lr)
    g.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    g.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps, help="-1: 6%% of the run")
    g.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    g.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio)
    g.add_argument("--clip-grad", type=float, default=defaults.clip_grad, help="max grad norm; <= 0 disables")


def _add_nonfinite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-nonfinite", type=int, default=0, metavar="N",
                   help="skip up to N steps whose loss or gradient norm is NaN/inf (no update; the step and the lr "
                        "schedule still advance) instead of stopping at the first with exit code 1")


def _optim(args) -> OptimConfig:
    return OptimConfig(lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
                       schedule=args.schedule, min_lr_ratio=args.min_lr_ratio, clip_grad=args.clip_grad)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"), help="autocast on CUDA")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _pick(cls, args, **extra):
    """Build dataclass ``cls`` from the argparse namespace fields of the same name, plus ``extra``."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in vars(args).items() if k in names}
    kwargs.update(extra)
    return cls(**kwargs)


def cmd_prepare(args) -> int:
    from .data.prepare import PrepareConfig, prepare

    from .data.quality import QualityConfig
    from .jsonio import read_json

    extra = {"progress": not args.no_progress}
    if args.quality_config:
        extra["quality_config"] = QualityConfig.from_dict(read_json(args.quality_config, "quality-filter config"))
    stats = prepare(_pick(PrepareConfig, args, **extra))
    shown = ("read", "clean", "boilerplate", "quality", "pii", "dedup", "train", "valid", "seconds")
    print(json.dumps({k: stats[k] for k in shown if k in stats}, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}/stats.json")
    return 0


def cmd_pretrain(args) -> int:
    from .jsonio import dumps
    from .train.pretrain import PretrainConfig, pretrain

    cfg = _pick(PretrainConfig, args, optim=_optim(args), progress=not args.no_progress, nsp=not args.no_nsp)
    summary = pretrain(cfg)
    print(dumps(summary, indent=2))
    return 0


def cmd_finetune(args) -> int:
    from .jsonio import dumps
    from .train.finetune import FinetuneConfig, finetune

    summary = finetune(_pick(FinetuneConfig, args, optim=_optim(args), progress=not args.no_progress))
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

    quickstart(_pick(QuickstartConfig, args, progress=not args.no_progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .quickstart import SCALES

    parser = argparse.ArgumentParser(prog="bmf", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="raw text -> clean -> filter -> dedup -> tokenizer -> token shards")
    p.add_argument("inputs", nargs="+", help="files or directories (.txt .md .rst .jsonl .csv, optionally .gz)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--character-coverage", type=float, default=0.9995,
                   help="share of characters that get their own piece; the rest use byte fallback")
    p.add_argument("--split", choices=("file", "paragraph", "line"), default="file",
                   help="how plain-text files become documents")
    p.add_argument("--text-field", default="text", help="text field of .jsonl/.csv inputs")
    p.add_argument("--min-chars", type=int, default=20, help="drop cleaned documents shorter than this")
    p.add_argument("--valid-fraction", type=float, default=0.02)
    g = p.add_argument_group("filtering and dedup")
    g.add_argument("--no-quality", dest="quality", action="store_false",
                   help="skip the quality filters (Gopher quality/repetition, C4, FineWeb)")
    g.add_argument("--quality-config", help="JSON file of quality-filter settings, e.g. "
                   '{"c4": {"enabled": false}, "gopher_quality": {"min_words": 20}}')
    g.add_argument("--no-pii", dest="pii", action="store_false", help="do not mask e-mails, IPs, phone numbers")
    g.add_argument("--dedup", choices=("minhash", "exact", "none"), default="minhash",
                   help="minhash: exact then near-duplicate removal (default)")
    g.add_argument("--near-threshold", type=float, default=0.8, help="near-duplicate Jaccard threshold")
    g.add_argument("--minhash-index", help="load/save the LSH index here to dedup against earlier runs")
    g.add_argument("--boilerplate-min-docs", type=int, default=0,
                   help="> 0: drop lines that repeat in at least this many documents")
    p.add_argument("--num-threads", type=int, default=0, help="0: all cores")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("pretrain", help="pretrain a BERT (MLM+NSP), GPT or LSTM (causal LM)")
    p.add_argument("--data", required=True, help="directory written by `bmf prepare`")
    p.add_argument("--out", required=True, help="run directory (checkpoint/, metrics.jsonl)")
    p.add_argument("--arch", choices=("bert", "gpt", "lstm"), default="bert")
    p.add_argument("--preset", default="tiny", help="model size: tiny | small | base | path to JSON")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--mlm-probability", type=float, default=0.15)
    p.add_argument("--no-nsp", action="store_true", help="BERT without next-sentence prediction")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    p.add_argument("--stop-at", type=int, default=0, help="save and stop after this step (schedule keeps max-steps)")
    p.add_argument("--loader", choices=("native", "python"), default="native",
                   help="native C++ TokenLoader (default) or the Python reference loader (same batches, slower)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="--resume even if data/arch/preset/seq-len/batch-size/grad-accum differ (logged)")
    _add_nonfinite(p)
    _add_optim(p, OptimConfig())
    _common(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="sequence classification from a pretraining checkpoint")
    p.add_argument("--checkpoint", required=True, help="pretraining checkpoint directory")
    p.add_argument("--arch", choices=("bert", "gpt", "lstm"), default=None,
                   help="optional check: must equal the checkpoint's arch (which is always used)")
    p.add_argument("--train", required=True, help="CSV/JSONL with text and label")
    p.add_argument("--valid", help="CSV/JSONL for model selection")
    p.add_argument("--out", required=True)
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=0, help="> 0: stop after this many steps")
    _add_nonfinite(p)
    _add_optim(p, OptimConfig(lr=1e-4, warmup_steps=-1))
    _common(p)
    p.set_defaults(func=cmd_finetune)

    from .eval.stream import DEFAULT_MAX_LINE_BYTES, positive_int

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
    p.add_argument("--format", default="torchscript", choices=("torchscript", "aoti"),
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
    p.add_argument("--out", default="bmf_quickstart", help="where every artefact goes")
    p.add_argument("--scale", choices=sorted(SCALES), default="default", help="smoke: a seconds-long run for tests")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
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
