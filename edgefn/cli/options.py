"""Every CLI option, declared once; the groups commands are composed from; config fields back to flags."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from edgefn.core.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


class RegistryChoice(click.Choice):  # type: ignore[type-arg]
    """click.Choice over a library registry ("module:NAME"), read on first use: `edgefn --help` stays instant
    and the CLI keeps no copy of the list."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        if self._choices is None:
            module, name = self.registry.split(":")
            found = getattr(importlib.import_module(module), name)
            self._choices = tuple(found() if callable(found) else found)
        return self._choices

    @choices.setter
    def choices(self, value: Iterable[str]) -> None:
        self._choices = tuple(value)


class RegistryHelp(click.Option):
    """An option whose help a registry computes when help is shown (`help_from`: "module:function"), so that
    what was registered after import (an engine, a peer, a scheme) is listed; the static `help` follows it."""

    def __init__(self, *args: Any, help_from: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_from = help_from
        self.help_after = self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        module, function = self.help_from.split(":")
        listed = getattr(importlib.import_module(module), function)()
        self.help = f"{listed} {self.help_after}".strip()
        return super().get_help_record(ctx)


class Decimals(click.ParamType):
    """A number of decimals (0-17), or `full` (None: floats written as computed)."""

    name = "decimals"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "N|full"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "full":
            return None
        try:
            decimals = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of decimals (0-17) or full", param, ctx)
        if not 0 <= decimals <= 17:
            self.fail(f"{decimals} is not a number of decimals from 0 to 17 (or full)", param, ctx)
        return decimals


_PATH = click.Path(path_type=Path)

# The one table of options: a flag means the same thing, with the same help and default, in every command.
_TABLE: tuple[click.Parameter, ...] = (
    # data: which texts, read how
    click.Option(
        ["--data"],
        default="welfake",
        show_default=True,
        help="Dataset name (welfake, isot, constraint, liar, sample), a file/folder path, "
        "fake=PATH,real=PATH (one file or folder per class) or a union a+b+c.",
    ),
    click.Option(
        ["--text-col", "text_cols"],
        multiple=True,
        help="Text column of a generic file; repeat to join columns (title + text). Default: text.",
    ),
    click.Option(["--label-col"], help="Label column of a generic file. Default: label."),
    click.Option(
        ["--fake-label"],
        help="The label value that means fake in a generic file. Default: 0/1 (1 = fake) or fake/real.",
    ),
    click.Option(
        ["--no-clean"],
        is_flag=True,
        help="Keep the texts raw: no dataset cleaning (ISOT datelines etc.) and, in eval and predict, not the "
        "model's training cleaning either. Default: a named dataset's own cleaning; the model's in eval and predict.",
    ),
    click.Option(
        ["--clean", "clean_rules"],
        help="Comma list of cleaning rules (urls, drop-urls, handles, drop-handles, hashtags, reuters, "
        "featured-image, whitespace) for a generic file, or instead of a named dataset's own. "
        "Default: the dataset's own, none for a generic file.",
    ),
    click.Option(
        ["--strict"], is_flag=True, help="Refuse rows without a label instead of dropping and counting them."
    ),
    click.Option(
        ["--max-train-per-source"],
        type=click.IntRange(min=1),
        help="Cap each dataset's training rows in a union a+b (a seeded sample). Default: no cap.",
    ),
    click.Option(
        ["--seed"],
        type=int,
        default=42,
        show_default=True,
        help="Seed of the 70/15/15 split of datasets without official splits, of random subsets, of training.",
    ),
    # finetune
    click.Option(
        ["--init"],
        type=RegistryChoice("edgefn.core.presets:INIT_CHOICES"),
        default="pretrained",
        show_default=True,
        help="pretrained: local folder, HF cache, hub or bundled weights (never a silent fallback); "
        "scratch: random init of the preset's architecture.",
    ),
    click.Option(
        ["--epochs"],
        type=int,
        help="Maximum epochs. Default: the preset's, 5 for real presets; distill: the teacher's.",
    ),
    click.Option(["--lr"], type=float, help="Learning rate. Default: the preset's; distill: the teacher's."),
    click.Option(
        ["--warmup-steps"],
        type=click.IntRange(min=0),
        help="Steps of linear learning-rate warm-up. Default: the preset's; distill: the teacher's.",
    ),
    click.Option(
        ["--batch-size"],
        type=int,
        help="Texts per model call. Default: the preset's when fine-tuning, the teacher's in distill, 32 for eval "
        "and predict.",
    ),
    click.Option(
        ["--max-length"],
        type=int,
        help="Token limit: longer texts are truncated, and bench's fixed-shape inputs have this length. "
        "Default: 128 or the preset's for a new run; the run's for eval, predict and bench.",
    ),
    click.Option(
        ["--max-train-samples"],
        type=int,
        help="Train on a seeded random subset of this many training rows. Default: all; distill: the teacher's.",
    ),
    click.Option(
        ["--max-val-samples"],
        type=int,
        help="Use at most this many validation rows: finetune keeps a seeded random subset, export scores "
        "each variant on the first ones. Default: all; distill: the teacher's.",
    ),
    click.Option(
        ["--max-test-samples"],
        type=int,
        help="Use at most this many test rows: finetune scores and keeps a seeded random subset, bench "
        "measures the first ones. Default: all.",
    ),
    click.Option(
        ["--run-dir"],
        type=_PATH,
        help="The run folder. finetune, distill, run and demo write it (default: artifacts/<preset>-<data>; "
        "distill: artifacts/<teacher>-student<N>; demo: artifacts/demo-minilm-sample, replaced); export, bench, "
        "package and show read it (default: the most recent under artifacts/).",
    ),
    click.Option(
        ["--overwrite"],
        is_flag=True,
        help="Replace what the command wrote before: finetune and distill the run folder, export the variant "
        "folders, package RUN/package/<target>/.",
    ),
    click.Option(["--resume"], is_flag=True, help="Continue an interrupted run from its last checkpoint."),
    # distill
    click.Option(
        ["--teacher"],
        required=True,
        type=_PATH,
        help="The fine-tuned run folder the student learns from (its data, splits, token limit and settings).",
    ),
    click.Option(
        ["--layers"],
        type=click.IntRange(min=1),
        help="The student's number of layers, copied from evenly spaced teacher layers from the first (every "
        "k-th: 6 -> 3 keeps 0, 2, 4). No default: required unless --layer-map.",
    ),
    click.Option(
        ["--layer-map"],
        help="Comma list of the teacher layers the student starts from, in order (e.g. 0,2,4). "
        "Default: evenly spaced (--layers).",
    ),
    click.Option(
        ["--no-kd"],
        is_flag=True,
        help="Train the student on the labels only: plain layer dropping + fine-tuning, to compare with.",
    ),
    click.Option(
        ["--temperature"],
        type=float,
        default=2.0,
        show_default=True,
        help="Softmax temperature of the distillation loss (the soft term is scaled by its square).",
    ),
    click.Option(
        ["--alpha"],
        type=float,
        default=0.5,
        show_default=True,
        help="Weight of the soft loss on the teacher's logits; 1 - alpha weighs the hard labels.",
    ),
    click.Option(
        ["--hidden-weight"],
        type=float,
        default=0.0,
        show_default=True,
        help="Weight of a hidden-state loss: MSE of each student layer's output to its teacher layer's (0: off).",
    ),
    click.Option(
        ["--unlabelled"],
        type=_PATH,
        help="Texts without labels (.txt one per line, or .csv/.tsv/.jsonl with --column), labelled by the "
        "teacher and added to the training rows. Default: none.",
    ),
    # export
    RegistryHelp(
        ["--quantize", "schemes"],
        help_from="edgefn.export.schemes:scheme_help",
        help="Default: int8-dynamic for export, int8-dynamic,int8-static for run.",
    ),
    click.Option(
        ["--optimize"],
        type=RegistryChoice("edgefn.export.config:OPTIMIZE_LEVELS"),
        help="ONNX Runtime graph optimisation (none: the plain graph). Default: O2 for BERT-family and "
        "DistilBERT presets, none for MobileBERT (unsupported) and ALBERT (fusion unshares its layers).",
    ),
    click.Option(
        ["--isa"],
        type=RegistryChoice("edgefn.export.quantize:TARGETS"),
        help="The CPU instruction set int8 targets. Default: this CPU's.",
    ),
    click.Option(
        ["--calibration-samples"],
        type=int,
        default=256,
        show_default=True,
        help="Calibration texts for int8-static.",
    ),
    click.Option(
        ["--calibration-method"],
        type=RegistryChoice("edgefn.export.quantize:CALIBRATION_METHODS"),
        default="minmax",
        show_default=True,
        help="How int8-static sets activation ranges from the calibration texts.",
    ),
    click.Option(
        ["--parity-samples"],
        type=int,
        default=64,
        show_default=True,
        help="Validation texts for the fp32 ONNX vs PyTorch check.",
    ),
    click.Option(["--opset"], type=int, help="ONNX opset. Default: Optimum's for the architecture."),
    click.Option(
        ["--threads"],
        type=int,
        help="Intra-op threads of PyTorch and ONNX Runtime. Default: one per physical core.",
    ),
    # bench
    click.Option(
        ["--batch-sizes"], default="1,8,32", show_default=True, help="Comma list of batch sizes to measure."
    ),
    RegistryHelp(
        ["--providers"],
        help_from="edgefn.runtime.engines:engine_help",
        help="Default: cpu, plus cuda when present.",
    ),
    click.Option(
        ["--variants"],
        help="Comma list of the run's variants. Default: bench all of them plus pytorch; package web fp32, "
        "the first int8 that runs in WASM and fp16, mobile every CPU one.",
    ),
    click.Option(
        ["--real-lengths/--no-real-lengths"],
        default=True,
        show_default=True,
        help="Time the test texts end to end (tokenisation, dynamic padding, sorted batches).",
    ),
    click.Option(
        ["--fixed-shape/--no-fixed-shape"],
        default=True,
        show_default=True,
        help="Time fixed (batch, max-length) inputs, model call only.",
    ),
    click.Option(
        ["--min-time"],
        type=float,
        default=1.0,
        show_default=True,
        help="Least seconds measured per batch size and input mode.",
    ),
    RegistryHelp(
        ["--peers"],
        default="all",
        show_default=True,
        help_from="edgefn.bench.peers:peer_help",
        help="Built from the run's checkpoint; all or none.",
    ),
    click.Option(
        ["--rounds"],
        type=int,
        default=24,
        show_default=True,
        help="Short interleaved rounds, each timing every target's every batch size and input mode in turn; "
        "--min-time is split between them. More rounds narrow each verdict's interval.",
    ),
    click.Option(
        ["--processes"],
        type=int,
        default=4,
        show_default=True,
        help="Fresh measuring processes per target, the rounds split between them (at most one per round); "
        "each process's own offset counts in the intervals.",
    ),
    click.Option(
        ["--quick"],
        is_flag=True,
        help="A first look: the run's variants and PyTorch only (--peers none), one process per target "
        "(--processes 1), no MatMul peak probe; replaces --peers, --rounds and --processes.",
    ),
    click.Option(
        ["--compare"],
        type=_PATH,
        help="Another run (e.g. a student's teacher) whose variants join the table, measured in the same "
        "interleaved rounds and scored on this run's test split, so the verdict chooses between both. "
        "Default: none.",
    ),
    click.Option(
        ["--max-drop"],
        type=float,
        help="Accuracy points a model may lose. bench: below PyTorch on test, for a row to be what to ship "
        "(default 0.5). export and run: below fp32 on validation; each int8 variant that loses more gets a "
        "<scheme>-guarded twin, its most sensitive layers kept in float (default: no search).",
    ),
    click.Option(
        ["--guard-data"],
        help="A second dataset (a name or path as for --data) on which a guarded variant must also stay within "
        "--max-drop of fp32: its validation split, at most 1000 rows (or --max-val-samples). Default: none.",
    ),
    click.Option(
        ["--time-budget"],
        type=click.FloatRange(min=0),
        default=600,
        show_default=True,
        help="Seconds the guard search may spend per scheme; the best variant found by then is saved.",
    ),
    # eval and predict
    click.Option(
        ["--model"],
        required=True,
        type=_PATH,
        help="A model folder: an exported variant (e.g. RUN/onnx/int8-dynamic), or for eval also a run "
        "folder (its PyTorch checkpoint).",
    ),
    click.Option(
        ["--split"],
        type=RegistryChoice("edgefn.train.evaluate:EVAL_SPLITS"),
        default="test",
        show_default=True,
        help="The rows scored: the dataset's test split, or all its rows (data the model never saw).",
    ),
    click.Option(
        ["--max-samples"],
        type=int,
        help="Score a seeded random subset of this many rows (and of the run's own test split). Default: all.",
    ),
    click.Option(
        ["--ood-score"],
        type=RegistryChoice("edgefn.runtime.classifier:OOD_SCORES"),
        default="energy",
        show_default=True,
        help="Out-of-distribution score: energy (of the logits) or msp (the top softmax probability).",
    ),
    click.Option(
        ["--output"],
        type=_PATH,
        help="Where to write: data audit a JSON copy of its report; eval a folder (default: RUN/eval/<data>); "
        "predict a file (default: standard output).",
    ),
    click.Option(
        ["--input", "input_path"],
        help="A .txt file (one text per line), a .csv/.tsv/.jsonl file (see --column), or - for stdin. "
        "Default: the TEXTS arguments, else stdin.",
    ),
    click.Option(
        ["--column"], default="text", show_default=True, help="Text column of a CSV/TSV/JSONL input."
    ),
    click.Option(
        ["--format", "fmt"],
        type=RegistryChoice("edgefn.runtime.predict_rows:OUTPUT_FORMATS"),
        default="jsonl",
        show_default=True,
        help="Output rows as JSON lines, CSV or (with --engine ray) Parquet.",
    ),
    click.Option(
        ["--provider"], default="cpu", show_default=True, help="cpu, cuda or a full ONNX Runtime EP name."
    ),
    click.Option(
        ["--encoding"], default="utf-8", show_default=True, help="Encoding of the input file or stdin."
    ),
    click.Option(
        ["--id-column"],
        help="Column of a CSV/TSV/JSONL input copied to each output row under its own name, to join the "
        "predictions back. Default: id, where the input has one; '' for none.",
    ),
    click.Option(["--echo"], is_flag=True, help="Copy each input text into its output row (field text)."),
    click.Option(
        ["--precision"],
        type=Decimals(),
        default="4",
        show_default=True,
        help="Decimals of prob_fake, logits and ood_score in the output, or full for every digit.",
    ),
    click.Option(
        ["--engine"],
        type=click.Choice(("local", "ray")),
        default="local",
        show_default=True,
        help="What scores the rows: this process, or a pool of actors on Ray Data (ray: --input a file, folder "
        "or glob of .parquet/.csv/.tsv/.jsonl/.txt files, --output required; docs/scaling.md). The model's "
        "runtime is --provider's either way.",
    ),
    click.Option(
        ["--address"],
        help="--engine ray: the Ray cluster to join (HOST:PORT as `ray start --head` prints it, or auto). "
        "Default: a local Ray on this machine's cores.",
    ),
    click.Option(
        ["--workers"],
        type=click.IntRange(min=1),
        help="--engine ray: actors, each loading the model once. Default: the cluster's CPUs / "
        "--threads-per-worker.",
    ),
    click.Option(
        ["--threads-per-worker"],
        type=click.IntRange(min=1),
        help="--engine ray: intra-op threads of each actor's model, and the CPUs Ray reserves for it. Default: 1.",
    ),
    # package
    click.Option(
        ["--target"],
        required=True,
        type=RegistryChoice("edgefn.package.targets:target_names"),
        help="web (a static page + Transformers.js layout) or mobile (.ort).",
    ),
    click.Option(
        ["--check-samples"],
        type=int,
        default=100,
        show_default=True,
        help="Validation texts each packaged model is checked on.",
    ),
    click.Option(
        ["--browser-check"], is_flag=True, help="web: also run the page in headless Chromium on them."
    ),
    # data inspect / audit, show
    click.Option(["--tokenizer"], help="Tokenizer folder or hub id. Default: the bundled WordPiece."),
    click.Option(
        ["--ngrams"], type=click.IntRange(min=0), default=15, show_default=True, help="Top n-grams per class."
    ),
    click.Option(["--no-duplicates"], is_flag=True, help="Skip the MinHash near-duplicate search."),
    click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON."),
    # arguments
    click.Argument(["data"]),
    click.Argument(["preset"]),
    click.Argument(["texts"], nargs=-1),
)
PARAMS: dict[str, click.Parameter] = {
    (p.opts[0] if isinstance(p, click.Option) else p.name or ""): p for p in _TABLE
}

# The config fields a flag sets where they are not named like the flag (Python API errors name fields).
FLAG_FIELDS: dict[str, tuple[str, ...]] = {
    "--isa": ("target",),
    "--quantize": ("schemes",),
    "--max-val-samples": ("max_eval_samples", "eval_samples"),
    "--max-test-samples": ("max_test_samples", "samples"),
    "--max-samples": ("samples",),
    "--max-length": ("max_length", "seq_len"),
    "--min-time": ("min_time_s",),
    "--time-budget": ("time_budget_s",),
    "--real-lengths": ("real_lengths",),
    "--fixed-shape": ("fixed_shape",),
    "--no-kd": ("kd",),
    "--input": ("input_path", "input"),
}


def fields_of(param: click.Parameter) -> tuple[str, ...]:
    """The config fields `param` sets."""
    name = param.opts[0] if isinstance(param, click.Option) else ""
    return FLAG_FIELDS.get(name, (param.name or "",))


def flag_message(e: ConfigError, command: click.Command | None) -> str:
    """`e` in the words of `command`'s flags: "optimize: unknown level" becomes "--optimize: unknown level"."""
    flags = {}
    for p in command.params if command else []:
        for field in fields_of(p):
            flags[field] = p.opts[0] if isinstance(p, click.Option) else p.human_readable_name
    detail = e.detail
    for field in e.related:
        if field in flags:
            detail = re.sub(rf"\b{field}\b", flags[field], detail)
    return f"{flags.get(e.field, e.field)}: {detail}"


# The groups commands are built from; `run` is finetune + export + bench.
DATA = ("--data", "--text-col", "--label-col", "--fake-label", "--no-clean", "--clean", "--strict")
FINETUNE = (
    *DATA,
    "--max-train-per-source",
    "--init",
    "--epochs",
    "--batch-size",
    "--lr",
    "--warmup-steps",
    "--max-length",
    "--max-train-samples",
    "--max-val-samples",
    "--max-test-samples",
    "--seed",
    "--run-dir",
    "--overwrite",
)
EXPORT = (
    "--quantize",
    "--optimize",
    "--isa",
    "--calibration-samples",
    "--calibration-method",
    "--parity-samples",
    "--max-val-samples",
    "--opset",
    "--threads",
    "--max-drop",
    "--guard-data",
    "--time-budget",
)
BENCH = (
    "--batch-sizes",
    "--providers",
    "--variants",
    "--max-length",
    "--real-lengths",
    "--fixed-shape",
    "--max-test-samples",
    "--min-time",
    "--threads",
    "--peers",
    "--rounds",
    "--processes",
    "--quick",
    "--compare",
    "--max-drop",
)
# `distill`: the student's layers and loss, then the training settings it may change (the rest are the teacher's).
DISTILL = (
    "--teacher",
    "--layers",
    "--layer-map",
    "--no-kd",
    "--temperature",
    "--alpha",
    "--hidden-weight",
    "--unlabelled",
    "--column",
    "--epochs",
    "--batch-size",
    "--lr",
    "--warmup-steps",
    "--max-train-samples",
    "--max-val-samples",
    "--run-dir",
    "--overwrite",
    "--resume",
)
INFERENCE = ("--batch-size", "--threads", "--max-length")  # eval and predict: how the model runs
RAY = ("--engine", "--address", "--workers", "--threads-per-worker")  # predict: where the rows are scored


def use(*groups: Sequence[str]) -> Callable[[F], F]:
    """Attach the parameters named in `groups` to a command, in order, each once."""

    def decorate(fn: F) -> F:
        names = list(dict.fromkeys(name for group in groups for name in group))
        params = fn.__dict__.setdefault("__click_params__", [])
        params.extend(PARAMS[name] for name in reversed(names))  # click reverses decorator order
        return fn

    return decorate
