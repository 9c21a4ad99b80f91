"""Peers: what a user would pick instead of edgefn's variants, built from the run's own checkpoint.

Each peer is one line of someone else's documented recipe, with default arguments, registered by the engine that
runs it (`runtime.engines.Peer`). Bench measures them with the same protocol, texts, threads and fresh processes
as edgefn's variants; a peer that cannot run here is a row with its reason, never dropped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.runs import RunFolder
from edgefn.runtime import engines
from edgefn.runtime.engines import Peer

RECIPE_VERSION = 1  # bump when a recipe changes: built peers of another version are rebuilt


def resolve_peers(names: tuple[str, ...] | None) -> tuple[str, ...]:
    """`all` (None) -> every registered peer; `none` -> none; else the names, checked."""
    known = engines.peers()
    if names is None or tuple(names) == ("all",):
        return tuple(known)
    if tuple(names) == ("none",):
        return ()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EdgefnError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(known)}, all, none")
    return tuple(dict.fromkeys(names))


def peer_help() -> str:
    """The help of bench's peer option, computed from the engine registry when help is shown."""
    return (
        "Comma list of what users would pick instead, built from the run's checkpoint and measured the same way: "
        f"{', '.join(engines.peers())}; all or none."
    )


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
    from edgefn.export.optimum import export_plain_onnx

    run.verify_checkpoint()  # every peer is built from it
    source = runs.sha256_dir(run.checkpoint)
    ready: dict[str, tuple[Path, runs.VariantManifest]] = {}
    unavailable: dict[str, str] = {}
    plain: Path | None = None
    with tempfile.TemporaryDirectory(prefix=".plain-", dir=_mkdir(run.peers_dir)) as work:
        for name in names:
            peer = engines.peers()[name]
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
    from edgefn.export.variants import copy_model_files

    engine = engines.get(peer.engine)
    with runs.atomic_dir(folder, overwrite=True, owned=runs.is_manifested_dir, kind="peer folder") as tmp:
        info = peer.build(plain, tmp, calibration, target) if peer.build else {}
        copy_model_files(plain.parent, tmp)  # config and tokenizer files of the plain export
        manifest = runs.VariantManifest(
            variant=peer.name,
            scheme=peer.scheme,
            peer=peer.name,
            description=peer.description,
            **info,
            runtime=engine.runtime,
            precision=peer.precision,
            execution_providers=[peer.engine],
            source_checkpoint_sha256=source,
            recipe_version=RECIPE_VERSION,
            **runs.model_record(tmp, engine.model_files(tmp)),
        )
        runs.write_json(tmp / runs.EXPORT_MANIFEST, manifest)
    return manifest
