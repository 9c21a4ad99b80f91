"""The schemes the engines' export hooks write (`Engine.schemes`), each from the plain fp32 graph."""

from __future__ import annotations

import functools

from edgefn.core.errors import EdgefnError
from edgefn.export.schemes import QuantScheme, SchemeContext, SchemeOutput, register_source
from edgefn.runtime import engines
from edgefn.runtime.engines import ExportRequest


def apply_engine_scheme(engine_name: str, scheme: str, ctx: SchemeContext) -> SchemeOutput:
    """Run the engine's export hook for `scheme` on the plain fp32 graph; the settings record its runtime."""
    engine = engines.get(engine_name)
    if ctx.plain_fp32 is None or engine.export is None:
        raise EdgefnError(f"{scheme} needs the plain fp32 graph and {engine_name}'s export hook")
    out = engine.export(ExportRequest(scheme, ctx.plain_fp32(), ctx.out_dir, ctx.calibration_inputs))
    return SchemeOutput(settings={"runtime": engine.runtime, **out.settings}, notes=list(out.notes))


def engine_schemes() -> list[QuantScheme]:
    """One scheme per (engine, scheme) the registered engines' export hooks write."""
    return [
        QuantScheme(name, description, functools.partial(apply_engine_scheme, e.name, name), (e.name,))
        for e in engines.engines()
        if e.export is not None
        for name, description in e.schemes
    ]


register_source(engine_schemes)
