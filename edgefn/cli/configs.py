"""Option values to stage configs: one builder per stage, shared by the stage's command and `run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError


def given(**values: Any) -> dict[str, Any]:
    """`values` without the options left out (None), so that the config's own defaults apply."""
    return {k: v for k, v in values.items() if v is not None}


def parse_int_list(value: str, option: str, minimum: int = 1) -> tuple[int, ...]:
    """Parse `1,8,32` into integers of at least `minimum` (positive by default), with a one-line error otherwise."""
    kind = "positive integers" if minimum == 1 else f"integers from {minimum}"
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip() != "")
    except ValueError:
        raise EdgefnError(f"{option} takes a comma list of {kind}, got {value!r}") from None
    if not out or any(v < minimum for v in out):
        raise EdgefnError(f"{option} takes a comma list of {kind}, got {value!r}")
    return out


def split_list(value: str | None) -> tuple[str, ...] | None:
    """Split `a, b,c` into names; None stays None."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def name_list(value: str | None, option: str) -> tuple[str, ...] | None:
    """`split_list` for an option whose absence means a default: given, it must name something."""
    names = split_list(value)
    if names == ():
        raise EdgefnError(f"{option} {value!r} names nothing; leave the option out for the default")
    return names


def make_data_options(opts: dict[str, Any]) -> Any:
    """DataOptions from the DATA group's values (and --seed, 42 where the command has none)."""
    from edgefn.data.catalog import DataOptions
    from edgefn.data.cleaning import check_rules

    rules = split_list(opts.get("clean_rules")) or ()
    check_rules(rules)
    return DataOptions(
        text_cols=tuple(opts["text_cols"]),
        label_col=opts["label_col"],
        fake_label=opts["fake_label"],
        clean=not opts["no_clean"],
        seed=opts.get("seed", 42),
        strict=opts.get("strict", False),
        clean_rules=rules,
        max_train_per_source=opts.get("max_train_per_source"),
    )


def make_finetune_config(preset: str, opts: dict[str, Any], resume: bool = False) -> Any:
    """A FinetuneConfig from the FINETUNE group's values."""
    from edgefn.train.finetune import FinetuneConfig

    return FinetuneConfig(
        preset=preset,
        data=opts["data"],
        data_options=make_data_options(opts),
        init=opts["init"],
        epochs=opts["epochs"],
        batch_size=opts["batch_size"],
        lr=opts["lr"],
        warmup_steps=opts["warmup_steps"],
        max_length=opts["max_length"],
        max_train_samples=opts["max_train_samples"],
        max_eval_samples=opts["max_val_samples"],
        max_test_samples=opts["max_test_samples"],
        seed=opts["seed"],
        run_dir=opts["run_dir"],
        overwrite=opts["overwrite"],
        resume=resume,
    )


def make_distill_config(opts: dict[str, Any]) -> Any:
    """A DistillConfig from the DISTILL group's values."""
    from edgefn.train.distill import DistillConfig

    layer_map = opts["layer_map"]
    return DistillConfig(
        teacher=opts["teacher"],
        layers=opts["layers"],
        layer_map=None if layer_map is None else parse_int_list(layer_map, "--layer-map", minimum=0),
        kd=not opts["no_kd"],
        temperature=opts["temperature"],
        alpha=opts["alpha"],
        hidden_weight=opts["hidden_weight"],
        unlabelled=opts["unlabelled"],
        column=opts["column"],
        epochs=opts["epochs"],
        batch_size=opts["batch_size"],
        lr=opts["lr"],
        warmup_steps=opts["warmup_steps"],
        max_train_samples=opts["max_train_samples"],
        max_eval_samples=opts["max_val_samples"],
        run_dir=opts["run_dir"],
        overwrite=opts["overwrite"],
        resume=opts["resume"],
    )


def make_export_config(
    opts: dict[str, Any], default_schemes: tuple[str, ...] | None = None, **fixed: Any
) -> Any:
    """An ExportConfig from the EXPORT group's values; without --quantize, `default_schemes` or the config's."""
    from edgefn.export.exporter import ExportConfig

    schemes = split_list(opts["schemes"])
    return ExportConfig(
        **given(schemes=default_schemes if schemes is None else schemes or ("none",)),
        optimize=opts["optimize"],
        target=opts["isa"],
        calibration_samples=opts["calibration_samples"],
        calibration_method=opts["calibration_method"],
        parity_samples=opts["parity_samples"],
        eval_samples=opts["max_val_samples"],
        opset=opts["opset"],
        threads=opts["threads"],
        max_drop=opts["max_drop"],
        guard_data=opts["guard_data"],
        time_budget_s=opts["time_budget"],
        **fixed,
    )


def make_bench_config(opts: dict[str, Any], **fixed: Any) -> Any:
    """A BenchConfig from the BENCH group's values."""
    from edgefn.bench.benchmark import BenchConfig

    make = BenchConfig.quick if opts.get("quick") else BenchConfig
    return make(
        batch_sizes=parse_int_list(opts["batch_sizes"], "--batch-sizes"),
        providers=split_list(opts["providers"]),
        variants=name_list(opts["variants"], "--variants"),
        max_length=opts["max_length"],
        real_lengths=opts["real_lengths"],
        fixed_shape=opts["fixed_shape"],
        samples=opts["max_test_samples"],
        min_time_s=opts["min_time"],
        threads=opts["threads"],
        peers=split_list(opts["peers"]) or ("none",),
        rounds=opts["rounds"],
        processes=opts["processes"],
        **given(max_drop=opts["max_drop"]),
        compare=opts["compare"],
        **fixed,
    )


def make_score_config(opts: dict[str, Any]) -> Any:
    """A ScoreConfig from `edgefn predict --engine ray`'s values; what only the local engine reads is refused."""
    from edgefn.runtime.ray_scoring import ScoreConfig

    if opts["texts"] or opts["input_path"] in (None, "-"):
        raise EdgefnError("--engine ray scores files: give --input FILE, FOLDER or GLOB (not texts or stdin)")
    if opts["output"] is None:
        raise EdgefnError("--engine ray writes a file: give --output FILE")
    if opts["threads"] is not None:
        raise EdgefnError("--engine ray sets each actor's threads with --threads-per-worker, not --threads")
    if opts["provider"] != "cpu":
        raise EdgefnError(f"--engine ray runs models on CPUs (--provider cpu), not {opts['provider']}")
    return ScoreConfig(
        model=opts["model"],
        input=opts["input_path"],
        output=opts["output"],
        column=opts["column"],
        id_column=opts["id_column"],
        fmt=opts["fmt"],
        workers=opts["workers"],
        address=opts["address"],
        max_length=opts["max_length"],
        clean=not opts["no_clean"],
        echo=opts["echo"],
        precision=opts["precision"],
        encoding=opts["encoding"],
        **given(threads_per_worker=opts["threads_per_worker"], batch_size=opts["batch_size"]),
    )


def data_files(data: str) -> list[str]:
    """The files and folders a --data / DATA argument names (`a.csv+b.jsonl`, `fake=A,real=B`,
    `welfake:PATH`, a folder of files), for the input-is-not-output guard; registry names are left out."""
    parts = (p.split("=", 1)[-1] for p in data.replace(",", "+").split("+"))
    candidates = (p.split(":", 1)[-1] if not Path(p).exists() else p for p in parts)
    return [c for c in candidates if c and Path(c).exists()]
