"""The engine registry: each way to run a model (a runtime on a device) is one `Engine` record."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefn.core import environment
from edgefn.core.errors import EdgefnError
from edgefn.runtime.inference import Encoder, Runner

# The built-in engine modules, imported by name on the first lookup (runtime, layer 2, may not import the engines
# layer): one line per module. Their order is the order of `engines()` and `peers()`.
BUILTIN = (
    "edgefn.engines.pytorch",
    "edgefn.engines.onnxruntime",
    "edgefn.engines.openvino",
)
Calibration = Callable[[], dict[str, list[list[int]]]]  # model inputs of the run's calibration texts
# Threading settings bench passes to every engine in `LoadRequest.options`, so that they are explicit and equal
# across engines (an engine applies those its library has, and says which in its `threading` record):
SPIN = "spin"  # bool: idle worker threads spin between parallel sections (True) or sleep (False)
CPU_PINNING = "cpu_pinning"  # bool: threads pinned to cores (True) or placed by the operating system (False)


def _runs_here() -> str | None:
    return None


@dataclass(frozen=True)
class LoadRequest:
    """What an engine's `load` gets: the model (a variant's model file, or a checkpoint folder) and how to run it."""

    model: Path
    threads: int | None = None  # intra-op threads (None: the library's default)
    precision: str = "fp32"  # what the variant computes in (export.json's "precision")
    max_length: int | None = None  # the encoder's token limit: batches that reach it are full-length ones
    options: Mapping[str, Any] = field(
        default_factory=dict
    )  # a peer's engine options; bench's SPIN, CPU_PINNING


@dataclass(frozen=True)
class ExportRequest:
    """What an engine's export hook gets: which of its schemes to write, from which graph, where to."""

    scheme: str
    onnx_model: Path  # the plain (unfused) fp32 ONNX graph
    out_dir: Path
    calibration: Calibration
    float_nodes: tuple[
        str, ...
    ] = ()  # linear nodes of the ONNX graph to leave in float (`Engine.float_layers`)


@dataclass
class Exported:
    """What an export hook wrote: the settings export.json records (its "precision" is what the runtime computes
    in) and notes for the user."""

    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)


# plain ONNX graph, output folder, calibration inputs, int8 CPU target -> what the manifest records of the recipe
PeerBuild = Callable[[Path, Path, Calibration, str], dict[str, Any]]


@dataclass(frozen=True)
class Peer:
    """What a user would pick instead of edgefn's variants: one documented recipe with default arguments, built from
    the run's checkpoint and run by one engine; bench measures it as a row of its own."""

    name: str
    description: str
    engine: str  # the engine that runs it (its bench row's provider)
    scheme: str  # fp32, bf16 or int8: which MatMul peak it is compared with
    # writes its model files from the plain ONNX graph; None: it runs the checkpoint itself
    build: PeerBuild | None = None
    unavailable: Callable[[], str | None] = _runs_here  # why it cannot run here (None: it can)
    precision: str = "fp32"  # recorded in its export.json, read by its engine's load
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to its engine's load


@dataclass(frozen=True)
class Engine:
    """One way to run a model: a runtime on a device, the files it runs, how it loads, exports and is compared."""

    # what bench rows, `--providers`, `--provider` and export.json's execution_providers call it
    name: str
    # "cpu" or "cuda": the verdict ranks rows per device (None: a device it does not rank)
    device: str | None
    # the model format it runs (export.json's "runtime"): engines of one runtime run the same variants
    runtime: str
    # the module that registers it: bench's fresh measuring processes import it to find the engine
    module: str
    load: Callable[[LoadRequest], Runner]
    # a variant folder's model files, the one `load` opens first (how a folder is recognised); () for a checkpoint
    files: tuple[str, ...] = ()
    extra_files: tuple[str, ...] = ()  # glob patterns of files that belong to the model where present
    suffixes: tuple[str, ...] = ()  # model files it loads outside a variant folder (export's checks)
    available: Callable[[], str | None] = _runs_here  # None, or why it cannot run here with the install hint
    versions: tuple[str, ...] = ()  # distributions whose versions every environment block records
    fingerprint: Callable[[Path], str] | None = None  # what a folder computes (None: SHA-256 of `files`)
    encoder: Callable[[Path, int], Encoder] | None = None  # how it tokenises (None: tokenizer.json)
    export: Callable[[ExportRequest], Exported] | None = None  # writes its model files for one of `schemes`
    schemes: tuple[tuple[str, str], ...] = ()  # (name, description) of the export schemes `export` writes
    # its int8 schemes whose `export` honours `ExportRequest.float_nodes` (export's guard search can use them) ->
    # which of the given linear layers (ONNX node names) a folder it wrote runs in float
    float_layers: Mapping[str, Callable[[Path, tuple[str, ...]], set[str]]] = field(default_factory=dict)
    # one profiled call on a feed: the profile file of where each node ran (engines that fall back per node)
    profile: Callable[[LoadRequest, dict[str, np.ndarray]], Path] | None = None
    peers: tuple[Peer, ...] = ()
    # the threading settings `load` applies for a request, as its library names them (bench records them)
    threading: Callable[[LoadRequest], dict[str, Any]] | None = None
    aliases: tuple[str, ...] = ()  # lower-case other names (`cpu`, `cuda`)
    default: bool = True  # the engine its runtime's models run on when its device is asked for
    primary: bool = False  # asking for it asks for its device: other runtimes' models run there too

    def model_files(self, folder: Path) -> tuple[str, ...]:
        """The model files of `folder` it runs: `files`, then those matching `extra_files` that are there."""
        folder = Path(folder)
        found = {p.name for pattern in self.extra_files for p in folder.glob(pattern) if p.is_file()}
        return (*self.files, *sorted(found - set(self.files)))

    def encoder_for(self, folder: Path, max_length: int) -> Encoder:
        """The tokenizer of a folder it runs, truncating at `max_length`."""
        return (self.encoder or Encoder.from_folder)(Path(folder), max_length)

    def model_path(self, folder: Path) -> Path:
        """What `load` opens for a folder: its first model file, or the folder itself (a checkpoint)."""
        return Path(folder) / self.files[0] if self.files else Path(folder)

    def fingerprint_of(self, folder: Path) -> str | None:
        """A hash of what `folder` computes: rows with the same fingerprint run the same model (None: a checkpoint,
        which no other row runs)."""
        if self.fingerprint is not None:
            return self.fingerprint(Path(folder))
        if not self.files:
            return None
        digest = hashlib.sha256()
        for name in self.files:
            digest.update((Path(folder) / name).read_bytes())
        return digest.hexdigest()

    def recognises(self, path: Path) -> bool:
        """Whether `path` holds a model of its runtime: a folder with its first model file (a checkpoint engine: any
        of its extra files), or a file with one of its suffixes."""
        path = Path(path)
        if path.is_dir():
            return (path / self.files[0]).is_file() if self.files else bool(self.model_files(path))
        return path.suffix in self.suffixes


_ENGINES: dict[str, Engine] = {}
_ALIASES: dict[str, str] = {}
_PEERS: dict[str, Peer] = {}  # every registered peer's name -> its record (names are unique across engines)
# Functions that make an engine for a name nobody registered (any ONNX Runtime provider), with what they accept.
_RESOLVERS: list[tuple[Callable[[str], Engine | None], str]] = []
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True  # set first: the modules register (and may look up) while they are imported
        for module in BUILTIN:
            importlib.import_module(module)


def register(engine: Engine) -> Engine:
    """Add an engine and its peers; a name, alias or peer name already taken raises ValueError."""
    taken = sorted({engine.name, *engine.aliases} & (set(_ENGINES) | set(_ALIASES)))
    taken += sorted({p.name for p in engine.peers} & set(_PEERS))
    if taken:
        raise ValueError(f"engine {engine.name!r}: {', '.join(taken)} already registered")
    _ENGINES[engine.name] = engine
    _ALIASES.update({alias: engine.name for alias in engine.aliases})
    _PEERS.update({p.name: p for p in engine.peers})
    environment.record_versions_of(*engine.versions)
    return engine


def register_resolver(resolve: Callable[[str], Engine | None], accepts: str) -> None:
    """Add a function that makes an engine for names no record has (`accepts` says which, for error messages)."""
    _RESOLVERS.append((resolve, accepts))


def find(name: str) -> Engine | None:
    """The engine called `name` (or an alias, or one a resolver makes), None when there is none."""
    _load_builtins()
    key = name.strip()
    key = _ALIASES.get(key.lower(), key)
    if key in _ENGINES:
        return _ENGINES[key]
    return next((e for e in (resolve(key) for resolve, _ in _RESOLVERS) if e is not None), None)


def get(name: str) -> Engine:
    """The engine called `name`, or a one-line error listing the known ones."""
    engine = find(name)
    if engine is None:
        raise EdgefnError(f"unknown provider {name!r}; known: {known()}")
    return engine


def known() -> str:
    """The registered engines with their aliases, and what the resolvers accept, as one phrase."""
    _load_builtins()
    listed = [e.name + (f" ({', '.join(e.aliases)})" if e.aliases else "") for e in engines()]
    return ", ".join(listed) + "".join(f", or {accepts}" for _, accepts in _RESOLVERS)


def engines() -> list[Engine]:
    """The registered engines: the built-in ones in `BUILTIN` order (whichever was imported first), then the
    others in registration order."""
    _load_builtins()
    position = {module: i for i, module in enumerate(BUILTIN)}
    return sorted(_ENGINES.values(), key=lambda e: position.get(e.module, len(BUILTIN)))


def names() -> list[str]:
    """The registered engines' names, in `engines()` order."""
    return [e.name for e in engines()]


def peers() -> dict[str, Peer]:
    """Every registered engine's peers by name, in `engines()` order."""
    return {p.name: p for e in engines() for p in e.peers}


def default_engine(runtime: str, device: str | None) -> Engine | None:
    """The engine that runs `runtime`'s models on `device` when the device is asked for, if there is one."""
    return next((e for e in engines() if (e.runtime, e.device) == (runtime, device) and e.default), None)


def engine_for(runtime: str, requested: Engine) -> Engine | None:
    """What runs a model of `runtime` when `requested` is asked for: `requested` itself when it runs that runtime;
    else, when it stands for its device (cpu, cuda), the device's default engine of the runtime; else None."""
    if requested.runtime == runtime:
        return requested
    return default_engine(runtime, requested.device) if requested.primary else None


def runtime_of(path: Path) -> str | None:
    """The runtime whose model `path` is (a variant folder, a checkpoint, or a model file), None when none is."""
    return next((e.runtime for e in engines() if e.recognises(path)), None)


def variant_runtime(folder: Path) -> str | None:
    """The runtime of an exported variant folder (by its model file), None when it holds none."""
    return next((e.runtime for e in engines() if e.files and e.recognises(folder)), None)


def for_model(path: Path, provider: str) -> Engine:
    """The engine that runs the model at `path` when `provider` is asked for (see `engine_for`), or a one-line error
    naming the engines that run it."""
    requested, runtime = get(provider), runtime_of(path)
    if runtime is None:
        raise EdgefnError(f"{path} holds no model that an engine runs (engines: {known()})")
    engine = engine_for(runtime, requested)
    if engine is None:
        able = ", ".join(e.name for e in engines() if e.runtime == runtime)
        raise EdgefnError(
            f"{Path(path).name} is a {runtime} model: it runs on {able}, not on {requested.name}"
        )
    return engine


def library_versions() -> dict[str, str]:
    """Python's and the results-shaping libraries' versions, every registered engine's libraries included."""
    _load_builtins()
    return environment.library_versions()


def cuda_device_present() -> bool:
    """Whether a CUDA GPU is usable (via torch, which every edgefn install has; imported only when asked)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def engine_help() -> str:
    """The help of bench's engine option, computed from the registry when help is shown."""
    devices = ", ".join(e.aliases[0] if e.aliases else e.name for e in engines() if e.primary)
    return (
        f"Comma list of engines: {known()}. Asking for a device ({devices}) runs every model there, each on its "
        "runtime's engine (default: the devices present)."
    )
