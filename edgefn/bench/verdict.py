"""What to ship: per device (its engine's, from the registry), input mode and batch size, the fastest row within
the accuracy budget, and whether its lead is real: the ratio of the two times with its 99% interval."""

from __future__ import annotations

import statistics
from typing import Any

from edgefn.bench.report import BenchReport, TargetResult
from edgefn.bench.stats import CONFIDENCE, ratio_interval, round_groups
from edgefn.runtime import engines

DEFAULT_MAX_DROP = 0.5  # accuracy points below the reference a shippable row may lose
PAIRED_RULE = (
    f"a lead is a tie exactly when the {CONFIDENCE:.0%} interval of the leader's time over the other's holds 1 "
    "(the median of the per-round ratios; a bootstrap paired by round within each process, plus the spread "
    "between processes)"
)
LEGACY_RULE = "a lead is a tie unless it held in every interleaved round"


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
    """[rounds in which `a` ran faster than `b`, rounds compared], None without two rounds of both."""
    if b is None or len(a["round_p50_ms"]) < 2 or len(a["round_p50_ms"]) != len(b["round_p50_ms"]):
        return None
    pairs = list(zip(a["round_p50_ms"], b["round_p50_ms"]))
    return [sum(x < y for x, y in pairs), len(pairs)]


def round_groups_of(report: BenchReport) -> tuple[list[int] | None, bool]:
    """The measuring process of each round, and whether the report used the legacy protocol (every round a
    process of its own; reports written before the protocol was recorded are legacy ones)."""
    protocol = report.protocol or {}
    rounds = int(protocol.get("rounds") or report.config.get("rounds") or 1)
    if protocol.get("name", "legacy") == "legacy":
        return list(range(rounds)), True
    return round_groups(rounds, int(protocol.get("processes") or 1)), False


def compare(
    a: dict[str, Any], b: dict[str, Any] | None, groups: list[int] | None, legacy: bool = False
) -> dict[str, Any]:
    """`a`'s time over `b`'s: the median per-round ratio with its 99% interval (`stats.ratio_interval`; the
    ratio of their p50s, without interval, under two rounds), the rounds `a` was faster in, and whether the
    lead is a tie: the interval holds 1 (legacy: the lead did not hold in every round)."""
    out: dict[str, Any] = {"ratio": None, "ci_low": None, "ci_high": None, "rounds_faster": None, "tie": None}
    if b is None:
        return out
    interval = ratio_interval(a["round_p50_ms"], b["round_p50_ms"], groups)
    rounds = _rounds_faster(a, b)
    if interval is not None:
        out.update(ratio=interval.ratio, ci_low=interval.ci_low, ci_high=interval.ci_high)
    elif a["p50_ms"] and b["p50_ms"]:
        out["ratio"] = a["p50_ms"] / b["p50_ms"]
    out["rounds_faster"] = rounds
    if legacy:
        out["tie"] = rounds is not None and rounds[0] != rounds[1]
    else:
        out["tie"] = interval.tie if interval is not None else False
    return out


def _ranked(candidates: list[dict[str, Any]], groups: list[int] | None, legacy: bool) -> list[dict[str, Any]]:
    """Candidates by p50; under the paired protocol a runner-up whose paired interval says it is faster than
    the p50 leader (the interval of leader / runner-up above 1) leads instead."""
    ranked = sorted(candidates, key=lambda c: c["p50_ms"])
    if not legacy and len(ranked) > 1:
        first = compare(ranked[0], ranked[1], groups)
        if first["ci_low"] is not None and first["ci_low"] > 1:
            ranked[0], ranked[1] = ranked[1], ranked[0]
    return ranked


def compute_verdict(report: BenchReport, max_drop: float = DEFAULT_MAX_DROP) -> list[dict[str, Any]]:
    """For every device, input mode and batch size: the fastest row whose test accuracy is at most
    `max_drop` points below the reference's, and the runner-up (peers included; the reference itself is a
    candidate; rows running the same model are one candidate). Rows without accuracy or latency are not
    candidates. Each cell carries the winner's time over the runner-up's with its 99% interval ("ratio",
    "ci_low", "ci_high") and, when a peer wins, the peer's over edgefn's fastest own row: a lead whose
    interval holds 1 is a tie (reports of the legacy protocol: a lead that did not hold in every round)."""
    groups, legacy = round_groups_of(report)
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
        ranked = _ranked(_merge_same_models(cells[key]), groups, legacy)
        winner, runner_up = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        own = next((c for c in ranked if not c["peer"]), None)
        lead = compare(winner, runner_up, groups, legacy)
        peer = compare(winner, own, groups, legacy) if winner["peer"] else None
        verdict.append(
            {
                "device": key[0],
                "mode": key[1],
                "batch_size": key[2],
                "max_drop_pts": max_drop,
                "winner": winner,
                "runner_up": runner_up,
                "ratio": lead["ratio"],
                "ci_low": lead["ci_low"],
                "ci_high": lead["ci_high"],
                "tie_with_runner_up": bool(lead["tie"]),
                "rounds_faster_than_runner_up": lead["rounds_faster"],
                "peer_wins": bool(winner["peer"]),
                "fastest_own": own,
                "peer_vs_edgefn": None
                if peer is None
                else {k: peer[k] for k in ("ratio", "ci_low", "ci_high")},
                "peer_tie": None if peer is None else bool(peer["tie"]),
                "rounds_peer_faster_than_edgefn": None if peer is None else peer["rounds_faster"],
                "peer_wins_every_round": None
                if peer is None or peer["rounds_faster"] is None
                else _every_round(peer["rounds_faster"]),
                "decided_by": "rounds" if legacy else "interval",
                "rule": LEGACY_RULE if legacy else PAIRED_RULE,
                "excluded_for_accuracy": sorted(excluded.get(key, [])),
            }
        )
    return verdict


def _every_round(rounds: list[int]) -> bool:
    return rounds[0] == rounds[1]
