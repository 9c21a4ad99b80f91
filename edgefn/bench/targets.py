"""What bench measures: the run's variants and the peers, each on the engines asked for, and whether it runs here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.bench.peers import build_peers
from edgefn.core.errors import EdgefnError
from edgefn.core.progress import Progress
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.engines import Engine

REFERENCE = "pytorch"  # the fine-tuned checkpoint, run as a variant: what every row is compared with
PEER_CALIBRATION_SAMPLES = 256  # as export's --calibration-samples default
Variants = dict[
    str, tuple[Path, runs.VariantManifest]
]  # name -> (folder, checked export.json); checkpoint: empty


@dataclass
class Target:
    """One model on one engine, and whether it can run here."""

    variant: str
    provider: str  # the engine that runs it (CPUExecutionProvider, CUDAExecutionProvider, torch-cpu, ...)
    model_dir: Path
    scheme: str
    status: str = "pending"  # pending -> ok | failed; or unavailable
    reason: str | None = None
    peer: bool = False
    description: str | None = None
    manifest: runs.VariantManifest = field(default_factory=runs.VariantManifest)  # checked export.json
    options: dict[str, Any] = field(default_factory=dict)  # a peer's options for its engine's load
    run: str | None = None  # the --compare run it belongs to (None: the run benchmarked)

    @property
    def engine(self) -> Engine:
        return engines.get(self.provider)


def device_of(provider: str) -> str | None:
    """The device of a row's engine (None: one this registry does not know, or a device not ranked)."""
    engine = engines.find(provider)
    return engine.device if engine else None


def default_providers() -> tuple[str, ...]:
    """The engines that stand for a device and run here: CPU, plus CUDA when onnxruntime has it and a GPU is
    present."""
    return tuple(e.name for e in engines.engines() if e.primary and e.available() is None)


def _meant_elsewhere(manifest: runs.VariantManifest, engine: Engine, scheme: str) -> str | None:
    """Why a variant made for other devices' engines only (fp16, for CUDA) does not run on a CPU engine."""
    meant = list(manifest.execution_providers or [])
    if engine.device != "cpu" or not meant or any(device_of(p) == "cpu" for p in meant):
        return None
    return f"{scheme} needs {' or '.join(meant)}"


def plan_targets(variants: Variants, providers: tuple[str, ...], run: str | None = None) -> list[Target]:
    """Every variant on every engine asked for that runs its model (an engine that stands for its device, as
    CPUExecutionProvider does, runs every runtime's models there on their default engine), marked unavailable
    (with a reason) where it cannot run here.

    Args:
        variants: name -> (folder, manifest); "pytorch" -> (checkpoint folder, an empty manifest).
        providers: the engines asked for, by name (see `engines.get`).
        run: the --compare run the variants belong to (None: the run benchmarked).
    """
    requested = [engines.get(p) for p in providers]
    targets, planned = [], set()
    for name, (folder, manifest) in variants.items():
        runtime = engines.runtime_of(folder)
        scheme = "fp32" if name == REFERENCE else manifest.scheme or name
        for engine in (engines.engine_for(runtime, r) for r in requested if runtime is not None):
            if engine is None or (name, engine.name) in planned:
                continue
            planned.add((name, engine.name))
            reason = engine.available() or _meant_elsewhere(manifest, engine, scheme)
            status = "unavailable" if reason else "pending"
            targets.append(
                Target(name, engine.name, folder, scheme, status, reason, manifest=manifest, run=run)
            )
    return targets


def select_variants(run: RunFolder, names: tuple[str, ...] | None, include_pytorch: bool) -> Variants:
    """The requested variants (None: all, plus "pytorch"), each checked against its recorded hash; "pytorch" is
    the checkpoint."""
    folders = {p.name: p for p in run.variants()}
    for name in sorted(set(names or ()) & set(run.incomplete_variants())):  # no export.json
        runs.verify_variant(run.variant_dir(name))  # refused with the re-export command
    if not folders:
        raise EdgefnError(f"no ONNX variants in {run.onnx_dir}: run `edgefn export` first")
    known = [REFERENCE, *folders]
    wanted = list(names) if names is not None else known
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise EdgefnError(
            f"unknown variant(s) {', '.join(unknown)} in {run.path}; available: {', '.join(known)}"
        )
    if not include_pytorch:
        wanted = [v for v in wanted if v != REFERENCE]
    if not wanted:
        raise EdgefnError("no variants left to benchmark")
    out: Variants = {}
    for name in wanted:
        if name == REFERENCE:
            checkpoint = run.checkpoint
            if not (checkpoint / runs.MODEL_CONFIG).is_file():
                raise EdgefnError(
                    f"{checkpoint} holds no model: the PyTorch reference needs the fine-tuned "
                    "checkpoint (or pass --variants without pytorch)"
                )
            run.verify_checkpoint()
            out[name] = (checkpoint, runs.VariantManifest())
        else:
            out[name] = (folders[name], runs.verify_variant(folders[name]))
    return out


def compared_variants(other: RunFolder, names: tuple[str, ...] | None, include_pytorch: bool) -> Variants:
    """The variants of a --compare run, named `<run>/<variant>`: the names asked for that it has (None: all of
    them, plus its checkpoint as `<run>/pytorch`), each checked against its recorded hash."""
    if not other.variants():
        raise EdgefnError(
            f"--compare {other.path} has no ONNX variants: run `edgefn export --run-dir {other.path}`"
        )
    have = [REFERENCE, *other.variant_names()]
    wanted = None if names is None else tuple(n for n in names if n in have)
    if wanted == ():
        raise EdgefnError(
            f"--compare {other.path} has none of the variants {', '.join(names or ())}; "
            f"it has {', '.join(have)} (export them there first)"
        )
    found = select_variants(other, wanted, include_pytorch)
    return {f"{other.name}/{name}": folder for name, folder in found.items()}


def _asked_for(engine: Engine, requested: list[Engine]) -> bool:
    """Whether `engine` is asked for: by name, or through an engine that stands for its device."""
    return any(r.name == engine.name or (r.primary and r.device == engine.device) for r in requested)


def peer_targets(
    run: RunFolder, names: tuple[str, ...], providers: tuple[str, ...], target: str, say: Progress
) -> list[Target]:
    """The requested peers whose engine is asked for, as targets (built from the run's checkpoint where
    missing); a peer that cannot run here is a target marked unavailable with the reason."""
    from edgefn.export.variants import calibration_inputs

    requested = [engines.get(p) for p in providers]
    peers = engines.peers()
    names = tuple(n for n in names if _asked_for(engines.get(peers[n].engine), requested))
    if not names:
        return []

    def calibration() -> dict[str, list[list[int]]]:
        encoder = engines.for_model(run.checkpoint, "cpu").encoder_for(run.checkpoint, run.max_length(128))
        return calibration_inputs(run, encoder, PEER_CALIBRATION_SAMPLES)

    ready, unavailable = build_peers(run, names, target, calibration, say)
    targets = []
    for name in names:
        peer = peers[name]
        folder, manifest = ready.get(name, (run.peer_dir(name), runs.VariantManifest()))
        reason = unavailable.get(name)
        status = "unavailable" if reason else "pending"
        targets.append(
            Target(
                name,
                peer.engine,
                folder,
                peer.scheme,
                status,
                reason,
                True,
                peer.description,
                manifest=manifest,
                options=dict(peer.options),
            )
        )
    return targets
