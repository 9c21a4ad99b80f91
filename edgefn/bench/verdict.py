"""What to ship: per device (its engine's, from the registry), input mode and batch size, the fastest row within
the accuracy budget."""

from __future__ import annotations

import statistics
from typing import Any

from edgefn.bench.report import BenchReport, TargetResult
from edgefn.runtime import engines

DEFAULT_MAX_DROP = 0.5  # accuracy points below the reference a shippable row may lose


def _candidate(r: TargetResult, p50: float, rounds: list[float], flagged: bool) -> dict[str, Any]:
    acc = r.accuracy
    return {
        "variant": r.variant,
        "provider": r.provider,
        "precision": r.precision,
        "peer": r.peer,
        "p50_ms": p50,
        "round_p50_ms": list(rounds),
        "size_mb": r.size_mb,
        "accuracy": acc.accuracy if acc else None,
        "accuracy_delta_pts": 100 * acc.delta.get("accuracy", 0.0) if acc else None,
        "unreliable": flagged,
        "fingerprint": r.model_fingerprint,
    }


def _merge_same_models(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that run the same model file on the same runtime and precision (e.g. int8-dynamic on VNNI and
    `ort-default`) are one candidate: edgefn's variant when it is among them, timed as the mean of their p50s
    (their differences are noise), with every row's own p50 under "same_model" and the mean of each round."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for c in candidates:
        key = (c["fingerprint"], c["provider"], c["precision"]) if c["fingerprint"] else id(c)
        groups.setdefault(key, []).append(c)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        head = dict(min(members, key=lambda c: c["peer"]))  # edgefn's own row first
        head["p50_ms"] = statistics.mean(c["p50_ms"] for c in members)
        head["round_p50_ms"] = [statistics.mean(t) for t in zip(*(c["round_p50_ms"] for c in members))]
        head["unreliable"] = any(c["unreliable"] for c in members)
        head["same_model"] = {("peer " if c["peer"] else "") + c["variant"]: c["p50_ms"] for c in members}
        merged.append(head)
    return merged


def _rounds_faster(a: dict[str, Any], b: dict[str, Any] | None) -> list[int] | None:
    """[rounds in which `a` ran faster than `b`, rounds compared], None without two rounds of both: bench runs
    every row once per round, interleaved, so a lead that holds in every round is real and one that holds
    in some rounds only is noise."""
    if b is None or len(a["round_p50_ms"]) < 2 or len(a["round_p50_ms"]) != len(b["round_p50_ms"]):
        return None
    pairs = list(zip(a["round_p50_ms"], b["round_p50_ms"]))
    return [sum(x < y for x, y in pairs), len(pairs)]


def _every_round(rounds: list[int]) -> bool:
    return rounds[0] == rounds[1]


def compute_verdict(report: BenchReport, max_drop: float = DEFAULT_MAX_DROP) -> list[dict[str, Any]]:
    """For every device, input mode and batch size: the fastest row whose test accuracy is at most
    `max_drop` points below the reference's, and the runner-up (peers included; the reference itself is a
    candidate; rows running the same model are one candidate). Rows without accuracy or latency are not
    candidates. Each cell also counts the interleaved rounds in which the winner beat the runner-up and,
    when a peer wins, edgefn's fastest own row: a lead that does not hold in every round is a tie."""
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    excluded: dict[tuple[str, str, int], list[str]] = {}
    for r in report.results:
        engine = engines.find(r.provider)  # its device; rows of an engine not registered here are not ranked
        device = engine.device if engine else None
        if r.status != "ok" or r.accuracy is None or device is None:
            continue
        drop = -100 * r.accuracy.delta.get("accuracy", 0.0)
        for m in r.measurements:
            key = (device, m.mode, m.batch_size)
            if drop > max_drop:
                excluded.setdefault(key, []).append(f"{r.variant} ({drop:+.2f} pts)".replace("+", "-", 1))
                continue
            cells.setdefault(key, []).append(_candidate(r, m.latency.p50_ms, m.round_p50_ms, bool(m.flags)))
    verdict = []
    for key in sorted(cells, key=lambda k: (k[0], k[1], k[2])):
        ranked = sorted(_merge_same_models(cells[key]), key=lambda c: c["p50_ms"])
        winner, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        own = next((c for c in ranked if not c["peer"]), None)
        lead = _rounds_faster(winner, runner_up)
        peer_lead = _rounds_faster(winner, own) if winner["peer"] else None
        verdict.append(
            {
                "device": key[0],
                "mode": key[1],
                "batch_size": key[2],
                "max_drop_pts": max_drop,
                "winner": winner,
                "runner_up": runner_up,
                "peer_wins": bool(winner["peer"]),
                "fastest_own": own,
                "rounds_faster_than_runner_up": lead,
                "tie_with_runner_up": lead is not None and not _every_round(lead),
                "rounds_peer_faster_than_edgefn": peer_lead,
                "peer_wins_every_round": _every_round(peer_lead) if peer_lead is not None else None,
                "excluded_for_accuracy": sorted(excluded.get(key, [])),
            }
        )
    return verdict
