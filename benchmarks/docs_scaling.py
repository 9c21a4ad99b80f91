"""docs/scaling.md's measured numbers and what N nodes give on paper, from benchmarks/results/ray.json when it
holds a measurement (never from a `--quick` smoke run)."""

from __future__ import annotations

from typing import Any

from docs_common import RESULTS, describe_cpu, load, md_table, num, result_link

COMMAND = "python benchmarks/ray_scoring.py"
NODES = (1, 2, 4, 8, 16, 64)
ROWS = (1_000_000, 100_000_000)


def _duration(seconds: float) -> str:
    """Seconds as s, min, h or days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _largest(data: dict[str, Any]) -> str:
    """The input with the most lines that was measured."""
    measured = [name for name in data["summary"] if name in data["sizes"]]
    return max(measured, key=lambda name: data["sizes"][name])


def _measured(data: dict[str, Any]) -> list[str]:
    """One row per input size and setup, smallest input first."""
    startup = data["summary"]["startup_s"]
    names = sorted((n for n in data["summary"] if n in data["sizes"]), key=lambda n: data["sizes"][n])
    rows = []
    for name in names:
        for setup, c in data["summary"][name].items():
            ratio = "1.00 (reference)" if setup == "local" else f"{num(c.get('ratio'), '.2f')}"
            actor = "-" if setup == "local" else f"{c['actor_peak_rss_mb']:.0f}"
            ray = "-" if setup == "local" else f"{c['ray_system_rss_mb']:.0f}"
            speed = [num(c["texts_per_s"], ".1f"), ratio, num(startup.get(setup), ".1f")]
            lines = f"{data['sizes'][name]:,}"
            rows.append(
                [lines, setup, str(c["rounds"]), *speed, num(c["driver_peak_rss_mb"], ".0f"), actor, ray]
            )
    header = [
        "lines",
        "setup",
        "rounds",
        "texts/s",
        "vs local",
        "start-up s",
        "peak RSS MB: driver",
        "per actor",
        "Ray's others",
    ]
    return [
        f"Measured on {describe_cpu(data)}, the setups of each input interleaved; command `{data['command']}`, "
        f"from {result_link('ray')}. local: `edgefn predict` with 2 threads; ray-AxT: A actors of T threads on a "
        "local Ray. Throughput counts the whole process (Ray's start and shutdown included).",
        "",
        md_table(header, rows),
        "",
    ]


def _on_paper(data: dict[str, Any], name: str) -> list[str]:
    cells, startup = data["summary"][name], data["summary"]["startup_s"]
    best = max((s for s in cells if s != "local"), key=lambda s: cells[s]["steady_texts_per_s_per_cpu"])
    per_cpu, start, cores = cells[best]["steady_texts_per_s_per_cpu"], startup[best], data["cores_logical"]
    rows = []
    for nodes in NODES:
        rate = per_cpu * cores * nodes
        rows.append(
            [str(nodes), str(cores * nodes), f"{rate:,.0f}", *(_duration(start + n / rate) for n in ROWS)]
        )
    header = ["nodes", "CPUs", "texts/s", *(f"{n:,} rows" for n in ROWS)]
    return [
        f"The best layout measured, {best}, scored {per_cpu:.1f} texts/s per CPU once started, and took {start:.1f} s "
        f"to start (a 1-line run); nodes like the measured one ({cores} cores) would give, if throughput grew with "
        "the CPUs:",
        "",
        md_table(header, rows),
        "",
        "On paper only: no cluster was measured. It assumes every actor keeps its measured rate (inputs on a file "
        "system that keeps up, the same CPU), one start-up per run (Ray's start, then every actor loading its model "
        "at once), and a driver that writes rows as fast as the actors make them; the driver writes every row "
        "into one file, so it bounds the rate of a large cluster (not measured).",
    ]


def render_scaling_section() -> str:
    """The measured table and the on-paper table, or the line that says how to measure them."""
    how = f"run `{COMMAND}` (it writes `benchmarks/results/ray.json`), then `python benchmarks/make_docs.py`"
    if not (RESULTS / "ray.json").is_file():
        return f"Not measured yet: {how}."
    data = load("ray.json")
    if data.get("quick"):
        return f"Not measured yet (benchmarks/results/ray.json holds a `--quick` smoke run): {how}."
    name = _largest(data)
    return "\n".join([*_measured(data), *_on_paper(data, name)])
