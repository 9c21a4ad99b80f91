"""The quantization scheme registry; its families (one module each) register their schemes on first lookup."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.core.presets import ArchQuirks
from edgefn.runs import ONNX_FILE
from edgefn.runtime.inference import CPU

# The scheme families, imported by name on the first lookup (they import this registry): one line per module.
FAMILIES = (
    "edgefn.export.schemes.dynamic",
    "edgefn.export.schemes.static",
    "edgefn.export.schemes.fp16",
    "edgefn.export.schemes.engine",
)


@dataclass
class SchemeContext:
    """What a scheme needs: the fp32 model, where to write, the target and the architecture quirks."""

    fp32_model: Path
    out_dir: Path
    work_dir: Path
    target: str
    quirks: ArchQuirks
    calibration_inputs: Callable[[], dict[str, list[list[int]]]] = dict
    calibration_method: str = "minmax"
    plain_fp32: Callable[[], Path] | None = None  # the unfused fp32 graph, exported on demand
    float_nodes: tuple[str, ...] = ()  # linear nodes of the prepared graph to leave in float (the guard's)
    per_channel: bool | None = None  # static int8: one weight scale per output channel (None: the scheme's)
    memo: dict[str, Any] = field(default_factory=dict)  # prepared graphs and calibration ranges, reused


@dataclass(frozen=True)
class Int8Layout:
    """How a scheme quantizes a linear layer, as the guard's sensitivity measure simulates it: one weight scale
    per output channel or per matrix, 8- or 7-bit weights, activation ranges per call (dynamic) or calibrated."""

    per_channel: bool
    weight_bits: int = 8
    static: bool = False


def onnx_float_layers(folder: Path, nodes: tuple[str, ...]) -> set[str]:
    """Which of the linear layers `nodes` the model.onnx in `folder` keeps with float weights."""
    from edgefn.export.graph import float_linear_nodes

    return float_linear_nodes(folder / ONNX_FILE) & set(nodes)


@dataclass(frozen=True)
class GuardHooks:
    """What the guard search needs of an int8 scheme that can keep named linear layers in float.

    `prepare` returns the fp32 graph the scheme quantizes (its node names are what `SchemeContext.float_nodes`
    names); `layout` its int8 layout for the sensitivity measure; `float_layers` which of some layers a folder
    it wrote keeps in float; a static scheme also lists the calibration methods and per-channel settings the
    search may choose from."""

    prepare: Callable[[SchemeContext], Path]
    layout: Callable[[SchemeContext], Int8Layout]
    float_layers: Callable[[Path, tuple[str, ...]], set[str]] = onnx_float_layers
    calibration_methods: tuple[str, ...] = ()
    per_channel: tuple[bool, ...] = ()


@dataclass
class SchemeOutput:
    """What a scheme did: its settings, the passes it ran and the nodes it kept in float."""

    settings: dict[str, Any] = field(default_factory=dict)
    graph_passes: list[dict[str, Any]] = field(default_factory=list)
    nodes_kept_float: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quantized_from: Path | None = None  # the prepared fp32 graph the scheme quantized (in the work folder)


@dataclass(frozen=True)
class QuantScheme:
    """A registered way to turn the fp32 model into a variant (None for `none`: fp32 only)."""

    name: str
    description: str
    apply: Callable[[SchemeContext], SchemeOutput] | None
    execution_providers: tuple[str, ...] = (CPU,)  # the engines it is made for (the first writes its files)
    guard: GuardHooks | None = None  # set where the guard search can keep layers of it in float


_SCHEMES: dict[str, QuantScheme] = {}
_ALIASES: dict[str, str] = {}
_SOURCES: list[Callable[[], list[QuantScheme]]] = []  # schemes that come and go with what else is registered
_loaded = False


def register_scheme(
    name: str,
    description: str,
    aliases: tuple[str, ...] = (),
    execution_providers: tuple[str, ...] = (CPU,),
    guard: GuardHooks | None = None,
) -> Callable[[Any], Any]:
    """Decorator registering a scheme function under `name` (and its aliases)."""

    def decorate(fn: Callable[[SchemeContext], SchemeOutput] | None) -> Any:
        if name in _SCHEMES or name in _ALIASES:
            raise ValueError(f"scheme {name!r} is already registered")
        _SCHEMES[name] = QuantScheme(name, description, fn, execution_providers, guard)
        _ALIASES.update({alias: name for alias in aliases})
        return fn

    return decorate


def register_source(source: Callable[[], list[QuantScheme]]) -> None:
    """Add a function listing schemes made from another registry (the engines' export hooks), asked on each
    lookup so that an engine registered later brings its schemes."""
    _SOURCES.append(source)


def _family_rank(scheme: QuantScheme) -> int:
    """Where a scheme's family stands in FAMILIES (-1: `none`), so that the order of the schemes does not depend
    on which family module some caller imported first."""
    module = getattr(scheme.apply, "__module__", "")
    return FAMILIES.index(module) if module in FAMILIES else -1


def _schemes() -> dict[str, QuantScheme]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in FAMILIES:
            importlib.import_module(module)
    out = dict(sorted(_SCHEMES.items(), key=lambda item: _family_rank(item[1])))
    for source in _SOURCES:
        for scheme in source():
            out.setdefault(scheme.name, scheme)
    return out


def list_schemes(include_aliases: bool = False) -> list[str]:
    """Registered scheme names (and aliases when asked)."""
    return list(_schemes()) + (list(_ALIASES) if include_aliases else [])


def get_scheme(name: str) -> QuantScheme:
    """A scheme by name or alias, or a one-line error listing the known ones."""
    schemes = _schemes()
    key = _ALIASES.get(name, name)
    if key not in schemes:
        known = ", ".join(schemes) + "".join(f", {a} (= {t})" for a, t in _ALIASES.items())
        raise EdgefnError(f"unknown quantization scheme {name!r}; known schemes: {known}")
    return schemes[key]


def resolve_schemes(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Canonical scheme names, aliases resolved, duplicates dropped, order kept."""
    out: list[str] = []
    for name in names:
        canonical = get_scheme(name.strip()).name
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def scheme_help() -> str:
    """The help of export's scheme option, computed from the registry when help is shown."""
    schemes = _schemes()
    listed = [
        n + "".join(f" (or {a})" for a, t in _ALIASES.items() if t == n) for n in schemes if n != "none"
    ]
    return f"Comma list of schemes after fp32: {', '.join(listed)}, none."


register_scheme("none", "fp32 only (no quantization)")(None)
