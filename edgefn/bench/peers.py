"""Peers: what a user would pick instead of edgefn's variants, built from the run's own checkpoint.

Each peer is one line of someone else's documented recipe, with default arguments. Bench measures them with
the same protocol, texts, threads and fresh processes as edgefn's variants; a peer that cannot run here is a
row with its reason, never dropped.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.engines.reference import PYTORCH_INT8
from edgefn.runs import RunFolder
from edgefn.runtime.inference import CPU, OPENVINO, openvino_available

RECIPE_VERSION = 1  # bump when a recipe changes: built peers of another version are rebuilt


@dataclass(frozen=True)
class Peer:
    """A peer's name, what it is, where it runs and how it is built from the plain ONNX export."""

    name: str
    description: str
    provider: str  # the provider label of its bench row
    scheme: str  # the precision family: fp32, bf16 or int8 (which MatMul peak it is compared with)
    build: Callable[[Path, Path, Callable[[], dict[str, list[list[int]]]], str], dict[str, Any]] | None
    unavailable: Callable[[], str | None] = lambda: None
    precision: str = "fp32"  # OpenVINO's inference precision hint ("default": OpenVINO's own choice)


def _ort_default(plain: Path, out: Path, calibration: Any, target: str) -> dict[str, Any]:
    from edgefn.export.quantize import quantize_dynamic_default

    quantize_dynamic_default(plain, out)
    return {"recipe": "onnxruntime.quantization.quantize_dynamic(model, out) with default arguments"}


def _optimum_recipe(plain: Path, out: Path, calibration: Any, target: str) -> dict[str, Any]:
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    qc = getattr(AutoQuantizationConfig, target)(is_static=False, per_channel=False)
    with tempfile.TemporaryDirectory(prefix=".optimum-", dir=out.parent) as work:
        ORTQuantizer.from_pretrained(plain.parent, file_name=plain.name).quantize(qc, work)
        produced = next(Path(work).glob("*.onnx"))
        shutil.move(str(produced), out / runs.ONNX_FILE)
    return {"recipe": f"ORTQuantizer + AutoQuantizationConfig.{target}(is_static=False, per_channel=False)"}


def _openvino(precision: str) -> Callable[..., dict[str, Any]]:
    def build(plain: Path, out: Path, calibration: Any, target: str) -> dict[str, Any]:
        from edgefn.export.openvino_models import convert_to_ir

        convert_to_ir(plain, out)
        return {"recipe": f"openvino.convert_model(model.onnx), compiled with precision {precision}"}

    return build


def _openvino_int8(plain: Path, out: Path, calibration: Any, target: str) -> dict[str, Any]:
    from edgefn.export.openvino_models import NNCF_SUBSET, quantize_nncf

    quantize_nncf(plain, out, calibration())
    return {
        "recipe": "nncf.quantize(openvino model, calibration texts, model_type=TRANSFORMER), "
        f"{NNCF_SUBSET}-text subset of the run's calibration split"
    }


def _bf16_unavailable() -> str | None:
    from edgefn.export.openvino_models import bf16_unavailable

    return openvino_available() or bf16_unavailable()


PEERS = {
    p.name: p
    for p in (
        Peer(
            PYTORCH_INT8,
            "PyTorch dynamic int8 of the Linear layers (torch.ao.quantization.quantize_dynamic)",
            "torch-cpu",
            "int8",
            None,
        ),
        Peer(
            "ort-default",
            "ONNX Runtime's quantize_dynamic with default arguments on the plain Optimum graph",
            CPU,
            "int8",
            _ort_default,
        ),
        Peer(
            "optimum-recipe",
            "Optimum's documented dynamic recipe for this CPU (AutoQuantizationConfig, per-tensor)",
            CPU,
            "int8",
            _optimum_recipe,
        ),
        Peer(
            "openvino-fp32",
            "OpenVINO, fp32 inference precision",
            OPENVINO,
            "fp32",
            _openvino("fp32"),
            openvino_available,
        ),
        Peer(
            "openvino-bf16",
            "OpenVINO with its default precision on this CPU: bf16 (AVX512_BF16 / AMX)",
            OPENVINO,
            "bf16",
            _openvino("bf16"),
            _bf16_unavailable,
            precision="bf16",
        ),
        Peer(
            "openvino-int8",
            "OpenVINO + NNCF post-training int8 (transformer preset), calibrated like int8-static; "
            "OpenVINO's default precision for the float ops",
            OPENVINO,
            "int8",
            _openvino_int8,
            openvino_available,
            precision="default",
        ),
    )
}


def resolve_peers(names: tuple[str, ...] | None) -> tuple[str, ...]:
    """`all` (None) -> every peer; `none` -> none; else the names, checked."""
    if names is None or tuple(names) == ("all",):
        return tuple(PEERS)
    if tuple(names) == ("none",):
        return ()
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise EdgefnError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}, all, none")
    return tuple(dict.fromkeys(names))


def build_peers(
    run: RunFolder,
    names: tuple[str, ...],
    target: str,
    calibration: Callable[[], dict[str, list[list[int]]]],
    say: Callable[[str], None],
) -> tuple[dict[str, tuple[Path, runs.VariantManifest]], dict[str, str]]:
    """Build (or reuse) each peer's folder under RUN/peers/ from the run's checkpoint.

    Returns:
        name -> (folder, manifest) of the peers that can run (PyTorch's: the checkpoint folder), and
        name -> reason of those that cannot run here.
    """
    from edgefn.export.exporter import export_plain_onnx

    run.verify_checkpoint()  # every peer is built from it
    source = runs.sha256_dir(run.checkpoint)
    ready: dict[str, tuple[Path, runs.VariantManifest]] = {}
    unavailable: dict[str, str] = {}
    plain: Path | None = None
    with tempfile.TemporaryDirectory(prefix=".plain-", dir=_mkdir(run.peers_dir)) as work:
        for name in names:
            peer = PEERS[name]
            reason = peer.unavailable()
            if reason is not None:
                unavailable[name] = reason
                continue
            if peer.build is None:
                ready[name] = (run.checkpoint, runs.VariantManifest(peer=name, description=peer.description))
                continue
            folder = run.peer_dir(name)
            manifest = _reusable(folder, source)
            if manifest is None:
                if plain is None:
                    say("peers: exporting the plain Optimum graph they start from")
                    export_plain_onnx(run.checkpoint, Path(work) / "plain")
                    plain = Path(work) / "plain" / runs.ONNX_FILE
                say(f"peers: building {name} ({peer.description})")
                try:
                    manifest = _build(peer, plain, folder, source, calibration, target)
                except EdgefnError as e:
                    unavailable[name] = str(e)
                    continue
            ready[name] = (folder, manifest)
    return ready, unavailable


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _reusable(folder: Path, source: str) -> runs.VariantManifest | None:
    """The manifest of a peer built earlier from this checkpoint by this recipe version, else None."""
    try:
        manifest = runs.verify_variant(folder)
    except EdgefnError:
        return None
    same = manifest.source_checkpoint_sha256 == source
    return manifest if same and manifest.recipe_version == RECIPE_VERSION else None


def _build(
    peer: Peer, plain: Path, folder: Path, source: str, calibration: Any, target: str
) -> runs.VariantManifest:
    from edgefn.export.exporter import copy_model_files

    with runs.atomic_dir(folder, overwrite=True, owned=runs.is_manifested_dir, kind="peer folder") as tmp:
        info = peer.build(plain, tmp, calibration, target) if peer.build else {}
        copy_model_files(plain.parent, tmp)  # config and tokenizer files of the plain export
        manifest = runs.VariantManifest(
            variant=peer.name,
            scheme=peer.scheme,
            peer=peer.name,
            description=peer.description,
            **info,
            runtime="openvino" if peer.provider == OPENVINO else "onnxruntime",
            precision=peer.precision,
            execution_providers=[peer.provider],
            source_checkpoint_sha256=source,
            recipe_version=RECIPE_VERSION,
            **runs.model_record(tmp),
        )
        runs.write_json(tmp / runs.EXPORT_MANIFEST, manifest)
    return manifest
