"""The schemes the engines' export hooks write (`Engine.schemes`), each from the plain fp32 graph."""

from __future__ import annotations

import functools
from pathlib import Path

from edgefn.core.errors import EdgefnError
from edgefn.export.schemes import (
    GuardHooks,
    Int8Layout,
    QuantScheme,
    SchemeContext,
    SchemeOutput,
    register_source,
)
from edgefn.runtime import engines
from edgefn.runtime.engines import Engine, ExportRequest


def _plain(ctx: SchemeContext) -> Path:
    if ctx.plain_fp32 is None:
        raise EdgefnError("the engines' schemes need the plain fp32 graph")
    return ctx.plain_fp32()


def apply_engine_scheme(engine_name: str, scheme: str, ctx: SchemeContext) -> SchemeOutput:
    """Run the engine's export hook for `scheme` on the plain fp32 graph; the settings record its runtime. Layers
    asked to stay in float are checked in what it wrote."""
    engine = engines.get(engine_name)
    if engine.export is None:
        raise EdgefnError(f"{scheme} needs {engine_name}'s export hook")
    if ctx.float_nodes and scheme not in engine.float_layers:
        raise EdgefnError(f"{engine_name}'s {scheme} cannot keep layers in float")
    request = ExportRequest(scheme, _plain(ctx), ctx.out_dir, ctx.calibration_inputs, ctx.float_nodes)
    out = engine.export(request)
    if ctx.float_nodes:
        lost = set(ctx.float_nodes) - engine.float_layers[scheme](ctx.out_dir, ctx.float_nodes)
        if lost:
            raise EdgefnError(
                f"{scheme}: {len(lost)} layer(s) asked to stay in float were quantized: {sorted(lost)[0]}"
            )
    return SchemeOutput(
        settings={"runtime": engine.runtime, **out.settings},
        notes=list(out.notes),
        nodes_kept_float=list(ctx.float_nodes),
    )


def _guard(engine: Engine, scheme: str) -> GuardHooks | None:
    """The guard hooks of an engine's int8 scheme that keeps named layers in float; its sensitivity is simulated
    as post-training int8 usually quantizes: calibrated activation ranges, per-channel 8-bit weights."""
    check = engine.float_layers.get(scheme)
    if check is None:
        return None
    return GuardHooks(_plain, lambda ctx: Int8Layout(per_channel=True, weight_bits=8, static=True), check)


def engine_schemes() -> list[QuantScheme]:
    """One scheme per (engine, scheme) the registered engines' export hooks write."""
    return [
        QuantScheme(
            name,
            description,
            functools.partial(apply_engine_scheme, e.name, name),
            (e.name,),
            _guard(e, name),
        )
        for e in engines.engines()
        if e.export is not None
        for name, description in e.schemes
    ]


register_source(engine_schemes)
