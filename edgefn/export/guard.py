"""The guard search (`export --max-drop`): an int8 variant that loses more than the budget gets a guarded twin,
`<scheme>-guarded`, with its most sensitive linear layers kept in float (and for static schemes its calibration
chosen), one step at a time until a step is inside the budget or the time budget is spent."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.errors import disk_faults
from edgefn.export import schemes
from edgefn.export.budget import EPSILON_PTS, Sample, Score, load_samples
from edgefn.export.graph import LinearLayer, linear_layers
from edgefn.export.sensitivity import MEASURE, LayerSensitivity, rank_layers
from edgefn.export.variants import (
    FP32,
    ExportJob,
    VariantResult,
    build_manifest,
    compare_logits,
    copy_model_files,
    kept_result,
    model_logits,
    score_variant,
    variant_result,
)
from edgefn.runtime import engines
from edgefn.runtime.inference import length_sorted_batches

SENSITIVITY_TEXTS = 128  # calibration texts the sensitivity of the layers is measured on
SENSITIVITY_BATCH = 16
MAX_FLOAT_SHARE = 0.5  # at most this share of the int8 layers is kept in float: beyond it int8 buys little
TABLE_ROWS = 8  # layers in the sensitivity table export prints


@dataclass
class Candidate:
    """One step of the search: what was kept in float and how it was calibrated, and its scores."""

    float_layers: tuple[str, ...]
    calibration_method: str | None
    per_channel: bool | None
    scores: dict[str, Score]
    seconds: float = 0.0
    folder: Path | None = None  # its files (None: the full int8 variant itself)
    output: schemes.SchemeOutput | None = None
    logits: Any = None  # validation logits
    providers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def inside(self) -> bool:
        return all(s.excess_pts <= EPSILON_PTS for s in self.scores.values())

    def rank_key(self) -> tuple[bool, float, float, int]:
        """Better first: inside, least beyond the budget, most agreement, fewest float layers."""
        excess = max(s.excess_pts for s in self.scores.values())
        agreement = min(s.agreement for s in self.scores.values())
        return (not self.inside, round(max(excess, 0.0), 9), -agreement, len(self.float_layers))

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_layers": list(self.float_layers),
            "calibration_method": self.calibration_method,
            "per_channel": self.per_channel,
            "inside": self.inside,
            "seconds": round(self.seconds, 1),
            **{name: s.to_dict() for name, s in self.scores.items()},
        }


def guard_scheme(job: ExportJob, scheme: schemes.QuantScheme, full: VariantResult) -> VariantResult | None:
    """The guarded twin of the int8 variant `full` when it misses `--max-drop` (None when it is inside).

    Args:
        job: the export; `job.cfg.max_drop` is the budget in validation points against fp32.
        scheme: the scheme `full` was made by; schemes without guard hooks are left as they are.
        full: the scheme's variant as exported (or kept) by this export.
    """
    name = scheme.name + runs.GUARDED_SUFFIX
    max_drop = job.cfg.max_drop
    if max_drop is None or scheme.guard is None:
        return None
    kept = kept_result(job, name)
    if kept is not None:
        return kept
    samples = load_samples(job)
    full_logits = _full_logits(job, scheme, full.folder, samples)
    start = Candidate((), *_full_settings(job, scheme), _scores(full_logits, samples, max_drop))
    if start.inside:
        job.step(f"{scheme.name}: {_describe(start)}: inside --max-drop {max_drop:g}, no guard search")
        return None
    job.step(
        f"{scheme.name}: {_describe(start)} misses --max-drop {max_drop:g}: searching for layers to keep in "
        f"float (time budget {job.cfg.time_budget_s:g} s)"
    )
    with tempfile.TemporaryDirectory(prefix=".guard-", dir=job.run.onnx_dir) as work:
        search = _Search(job, scheme, samples, Path(work), start)
        search.run()
        return _write(job, scheme, name, search, full)


class _Search:
    """The steps of one scheme's search, the best candidate so far, and the clock."""

    def __init__(
        self, job: ExportJob, scheme: schemes.QuantScheme, samples: list[Sample], work: Path, start: Candidate
    ) -> None:
        assert scheme.guard is not None and job.cfg.max_drop is not None
        self.job, self.scheme, self.hooks, self.samples, self.work = job, scheme, scheme.guard, samples, work
        self.max_drop = job.cfg.max_drop
        self.began = time.monotonic()
        self.trace = [start]
        self.best = start
        self.longest = 0.0
        self.stopped = "no candidates left"
        self.ranking: list[LayerSensitivity] = []
        self.int8_layers: list[LinearLayer] = []
        fp32 = job.variant_dir(FP32)
        self.ctx = schemes.SchemeContext(
            fp32 / runs.ONNX_FILE,
            work / "out",
            work / "prepare",
            job.target,
            job.quirks,
            job.calibration,
            job.cfg.calibration_method,
            job.plain_fp32,
        )

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.began

    def _time_left(self) -> bool:
        """Whether another step, as long as the longest so far, ends within the time budget."""
        if self.seconds + self.longest > self.job.cfg.time_budget_s:
            self.stopped = "time budget"
            return False
        return True

    def run(self) -> None:
        if not self._time_left():
            return
        prepared = self.hooks.prepare(self.ctx)
        layers = linear_layers(prepared)
        full = self.job.variant_dir(self.scheme.name)
        floats = self.hooks.float_layers(full, tuple(layer.node for layer in layers))
        self.int8_layers = [layer for layer in layers if layer.node not in floats]
        self.job.step(f"{self.scheme.name}: ranking {len(self.int8_layers)} int8 layers by sensitivity")
        self.ranking = rank_layers(
            prepared,
            self.int8_layers,
            _sensitivity_feeds(self.job, prepared),
            self.hooks.layout(self.ctx),
            self.work / "sensitivity",
            self.job.cfg.threads,
        )
        base = (self.best.calibration_method, self.best.per_channel)
        for method in _ordered(self.hooks.calibration_methods, base[0]):
            for per_channel in self.hooks.per_channel:
                if (method, per_channel) != base and not self._step(method, per_channel, ()):
                    return
        chosen = (self.best.calibration_method, self.best.per_channel)
        most = max(1, int(len(self.ranking) * MAX_FLOAT_SHARE))
        for k in range(1, min(most, len(self.ranking)) + 1):
            if not self._step(*chosen, tuple(s.layer.node for s in self.ranking[:k])):
                return

    def _step(self, method: str | None, per_channel: bool | None, float_nodes: tuple[str, ...]) -> bool:
        """Make and score one candidate; False when the search stops (inside the budget, or out of time)."""
        if not self._time_left():
            return False
        began, i = time.monotonic(), len(self.trace)
        ctx = replace(
            self.ctx,
            out_dir=self.work / f"candidate-{i}",
            work_dir=self.work / f"work-{i}",
            float_nodes=float_nodes,
            calibration_method=method or self.ctx.calibration_method,
            per_channel=per_channel,
        )
        assert self.scheme.apply is not None
        out = self.scheme.apply(ctx)
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
        precision = str(out.settings.get("precision", "fp32"))
        notes: list[str] = []
        logits, providers = score_variant(self.job, self.scheme, ctx.out_dir, notes, precision)
        scored = {"validation": logits}
        model = engines.get(providers[0]).model_path(ctx.out_dir)
        for sample in self.samples[1:]:
            scored[sample.name] = model_logits(self.job, model, sample.texts, providers[0], precision)
        candidate = Candidate(
            float_nodes,
            method,
            per_channel,
            _scores(scored, self.samples, self.max_drop),
            time.monotonic() - began,
            ctx.out_dir,
            out,
            logits,
            providers,
            notes,
        )
        self.trace.append(candidate)
        self.longest = max(self.longest, candidate.seconds)
        self.job.step(f"{self.scheme.name} guard step {i}: {_settings(candidate)}: {_describe(candidate)}")
        if candidate.rank_key() < self.best.rank_key():
            if self.best.folder is not None:
                shutil.rmtree(self.best.folder, ignore_errors=True)
            self.best = candidate
        else:
            shutil.rmtree(ctx.out_dir, ignore_errors=True)
        if candidate.inside:
            self.stopped = "inside the budget"
            return False
        return True


def _ordered(methods: tuple[str, ...], first: str | None) -> tuple[str | None, ...]:
    """The calibration methods to try, the variant's own first; (None,) for a scheme that calibrates nothing."""
    if not methods:
        return (None,)
    return (first, *[m for m in methods if m != first])


def _full_settings(job: ExportJob, scheme: schemes.QuantScheme) -> tuple[str | None, bool | None]:
    """The full variant's calibration method and per-channel setting, where the scheme chooses them."""
    assert scheme.guard is not None
    if not scheme.guard.calibration_methods:
        return None, None
    return job.cfg.calibration_method, False


def _settings(c: Candidate) -> str:
    parts = [f"{len(c.float_layers)} layer(s) in float"]
    if c.calibration_method is not None:
        parts.append(f"{c.calibration_method}, {'per-channel' if c.per_channel else 'per-tensor'} weights")
    return ", ".join(parts)


def _describe(c: Candidate) -> str:
    return "; ".join(f"{name} {score.describe()}" for name, score in c.scores.items())


def _scores(logits: dict[str, Any], samples: list[Sample], max_drop: float) -> dict[str, Score]:
    return {s.name: Score.of(logits[s.name], s, max_drop) for s in samples}


def _full_logits(
    job: ExportJob, scheme: schemes.QuantScheme, folder: Path, samples: list[Sample]
) -> dict[str, Any]:
    """The full int8 variant's logits on each sample (validation ones this export computed are reused)."""
    manifest = runs.read_variant_manifest(folder)
    precision = manifest.precision or "fp32"
    provider = (manifest.measured_on or list(scheme.execution_providers))[0]
    model = engines.get(provider).model_path(folder)
    out = {}
    for sample in samples:
        cached = job.logits.get(scheme.name) if sample.name == "validation" else None
        out[sample.name] = (
            cached if cached is not None else model_logits(job, model, sample.texts, provider, precision)
        )
    return out


def _sensitivity_feeds(job: ExportJob, model: Path) -> list[dict[str, np.ndarray]]:
    """Length-sorted batches of the first SENSITIVITY_TEXTS calibration texts (validation texts without them)."""
    from edgefn.export.graph import graph_input_names

    texts = (
        job.run.read_split("calibration").texts[:SENSITIVITY_TEXTS]
        if job.run.split_file("calibration").is_file()
        else []
    )
    tokens = job.encoder.encode_compact(texts or job.eval_texts[:SENSITIVITY_TEXTS])
    names = set(graph_input_names(model)) | {"attention_mask"}
    batches = length_sorted_batches([len(t.ids) for t in tokens], SENSITIVITY_BATCH)
    feeds = [job.encoder.feed([tokens[i] for i in batch]) for batch in batches]
    return [{k: v for k, v in feed.items() if k in names} for feed in feeds]


# --- the variant ----------------------------------------------------------------------------------------------


def _projections(layers: list[LinearLayer], nodes: tuple[str, ...] | None = None) -> int:
    return sum(layer.projections for layer in layers if nodes is None or layer.node in nodes)


def guard_record(job: ExportJob, search: _Search) -> dict[str, Any]:
    """What export.json records of the search: float layers, drops before and after, the sensitivity ranking,
    every step and why the search stopped. The points recovered are counted on the sample and measure that put
    the full variant furthest beyond the budget (the validation drop, or its disagreement with fp32, or the
    guard data's drop)."""
    best, start = search.best, search.trace[0]
    int8 = _projections(search.int8_layers)
    floats = _projections(search.int8_layers, best.float_layers)
    binding = max(start.scores, key=lambda name: start.scores[name].excess_pts)
    measure = start.scores[binding].trigger
    lost = {
        "full": start.scores[binding].lost_pts(measure),
        "guarded": best.scores[binding].lost_pts(measure),
    }
    return {
        "full_variant": search.scheme.name,
        "max_drop_pts": search.max_drop,
        "inside_budget": best.inside,
        "stopped": search.stopped,
        "search_seconds": round(search.seconds, 1),
        "time_budget_s": job.cfg.time_budget_s,
        "float_layers": list(best.float_layers),
        "calibration_method": best.calibration_method,
        "per_channel": best.per_channel,
        "int8_layers_full": int8,
        "int8_layers": int8 - floats,
        "int8_layer_fraction": (int8 - floats) / int8 if int8 else 1.0,
        "full": {name: s.to_dict() for name, s in start.scores.items()},
        "guarded": {name: s.to_dict() for name, s in best.scores.items()},
        "binding": {"sample": binding, "measure": measure, "lost_pts": lost},
        "recovered_fraction": (lost["full"] - lost["guarded"]) / lost["full"] if lost["full"] > 0 else None,
        "guard_data": job.cfg.guard_data,
        "sensitivity": {
            "measure": MEASURE,
            "texts": SENSITIVITY_TEXTS,
            "layers": [s.to_dict() for s in search.ranking],
        },
        "trace": [c.to_dict() for c in search.trace],
    }


def _write(
    job: ExportJob, scheme: schemes.QuantScheme, name: str, search: _Search, full: VariantResult
) -> VariantResult:
    """Write the best candidate as RUN/onnx/<scheme>-guarded (the full variant's files when no step beat it)."""
    best, folder, fp32 = search.best, job.variant_dir(name), job.variant_dir(FP32)
    full_manifest = runs.read_variant_manifest(full.folder)
    providers = best.providers or list(full_manifest.measured_on or scheme.execution_providers)
    engine = engines.get(scheme.execution_providers[0])
    with (
        runs.atomic_dir(
            folder, overwrite=job.cfg.overwrite, owned=runs.is_manifested_dir, kind="variant folder"
        ) as tmp,
        disk_faults(folder),
    ):
        tmp.chmod(0o755)
        source = best.folder or full.folder
        for file in engine.model_files(source):
            shutil.copy2(source / file, tmp / file)
        copy_model_files(fp32, tmp)
        out = best.output or schemes.SchemeOutput(
            settings=dict(full_manifest.settings or {}),
            graph_passes=list(full_manifest.graph_passes or []),
            nodes_kept_float=list(full_manifest.nodes_kept_float or []),
        )
        logits = best.logits if best.logits is not None else job.logits.get(scheme.name)
        parity = {
            "reference": "fp32 onnx",
            "samples": len(job.eval_labels),
            **compare_logits(logits, job.fp32_logits),
        }
        manifest = build_manifest(
            job,
            tmp,
            name,
            scheme.name,
            list(scheme.execution_providers),
            parity,
            best.scores["validation"].accuracy,
            settings=out.settings,
            runtime=engine.runtime,
            precision=str(out.settings.get("precision", "fp32")),
            graph_passes=out.graph_passes,
            nodes_kept_float=out.nodes_kept_float,
            notes=[*best.notes, *(full_manifest.notes or [])] if best.folder is None else best.notes,
            measured_on=providers,
            model_files=engine.model_files(tmp),
            guard=guard_record(job, search),
        )
        runs.write_json(tmp / runs.EXPORT_MANIFEST, manifest)
    where = "inside the budget" if best.inside else f"still outside the budget ({search.stopped})"
    job.step(
        f"{name}: {len(best.float_layers)} layer(s) in float, {_describe(best)}: {where} after "
        f"{len(search.trace) - 1} step(s), {search.seconds:.0f} s"
    )
    return variant_result(folder, manifest)


def _change(name: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """One sample's line: points against fp32 before -> after, and the agreement (what decides on few texts)."""
    label = name.removeprefix("guard:")
    judged = f", {before['samples']} texts: judged by agreement" if before["trigger"] == "agreement" else ""
    return (
        f"  {label}: {-before['drop_pts']:+.2f} -> {-after['drop_pts']:+.2f} pts against fp32, agreement "
        f"{before['agreement']:.1%} -> {after['agreement']:.1%}{judged}"
    )


def format_guard(result: Any) -> str:
    """For each guarded variant of an export: each sample's drop and agreement before and after, its float layers
    and the sensitivity table (the most sensitive layers, which of them stayed in float)."""
    blocks = []
    for v in result.variants:
        record = v.guard
        if not record:
            continue
        floats = set(record["float_layers"])
        budget = f"--max-drop {record['max_drop_pts']:g}"
        where = f"inside {budget}" if record["inside_budget"] else f"outside {budget} ({record['stopped']})"
        lines = [
            f"{v.name}: {len(floats)} layer(s) in float ({record['int8_layer_fraction']:.0%} of int8 layers kept); "
            f"{len(record['trace']) - 1} step(s), {record['search_seconds']:.0f} s; {where}",
            *(_change(name, record["full"][name], after) for name, after in record["guarded"].items()),
        ]
        ranked = record["sensitivity"]["layers"][:TABLE_ROWS]
        if ranked:
            rows = [("rank", "layer", "rel. error", "float")]
            rows += [
                (str(i), r["module"], f"{r['relative_error']:.2e}", "yes" if r["node"] in floats else "")
                for i, r in enumerate(ranked, 1)
            ]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
