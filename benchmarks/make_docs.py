"""Write the generated documentation (CLI reference, registries, results, robustness, the README's headline).

Usage:
    python benchmarks/make_docs.py   # write docs/cli.md, docs/reference.md, docs/results.md, docs/robustness.md,
                                     # the README's headline table and docs/scaling.md's numbers (only the pages
                                     # that changed)
    python .ci/check_docs.py         # write nothing; exit 1 when a page differs (CI runs this)

Every figure comes from the committed files in benchmarks/results/, every option and default from the click
commands and the registries, so no number or flag is copied by hand. The pages hold no date of generation:
the same sources always give the same bytes.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import click
from docs_common import GENERATED_MARK, ROOT, generated_header, md_table
from docs_results import headline_table, render_results
from docs_robustness import render_robustness
from docs_scaling import render_scaling_section

README = "README.md"
HEADLINE_BEGIN = "<!-- generated: headline (benchmarks/make_docs.py) -->"
HEADLINE_END = "<!-- end of generated headline -->"
SCALING = "docs/scaling.md"
SCALING_BEGIN = "<!-- generated: measured and on paper (benchmarks/make_docs.py) -->"
SCALING_END = "<!-- end of generated section -->"


# --- docs/cli.md: every command from the click group ----------------------------------------------------


def _commands(group: click.Group, ctx: click.Context) -> list[tuple[click.Command, click.Context]]:
    """Every command under `group` in the order `--help` lists them, groups before their subcommands."""
    out: list[tuple[click.Command, click.Context]] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx)
        out.append((cmd, sub))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, sub)
    return out


def _prose(text: str) -> str:
    """Help text safe as Markdown: `<target>` outside code spans shown, not taken for an HTML tag."""
    parts = text.split("`")
    parts[::2] = [p.replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2]]
    return "`".join(parts)


def _cell(text: str) -> str:
    """Help text safe inside a Markdown table cell."""
    return _prose(" ".join(text.split())).replace("|", "\\|")


def _anchor(path: str) -> str:
    """GitHub's anchor for a heading made of `path` in backticks."""
    return "".join(c for c in path.lower().replace(" ", "-") if c.isalnum() or c == "-")


def _command_section(cmd: click.Command, ctx: click.Context) -> list[str]:
    usage = " ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])
    lines = [
        f"## `{ctx.command_path}`",
        "",
        _prose(inspect.cleandoc(cmd.help or "")),
        "",
        "```",
        usage,
        "```",
        "",
    ]
    if isinstance(cmd, click.Group):
        subs = [(n, cmd.get_command(ctx, n)) for n in cmd.list_commands(ctx)]
        rows = [
            [
                f"[`{ctx.command_path} {n}`](#{_anchor(ctx.command_path + ' ' + n)})",
                _cell(c.get_short_help_str(200)),
            ]
            for n, c in subs
            if c
        ]
        return lines + [md_table(["command", "what it does"], rows), ""]
    rows = []
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option) or "--help" in param.opts:
            continue  # arguments are named in the usage line; every command takes -h / --help
        record = param.get_help_record(ctx)
        if record is None:
            continue
        flags, help_text = record
        rows.append(["`" + flags.replace("|", r"\|") + "`", _cell(help_text)])  # GFM: escape | in code too
    if rows:
        lines += [md_table(["option", "meaning (and default)"], rows), ""]
    return lines


def render_cli() -> str:
    """docs/cli.md: the usage, help and options of every `edgefn` command."""
    from edgefn.cli.commands import main

    root = click.Context(main, info_name="edgefn")
    commands = _commands(main, root)
    index = [
        [f"[`{ctx.command_path}`](#{_anchor(ctx.command_path)})", _cell(cmd.get_short_help_str(200))]
        for cmd, ctx in commands
    ]
    lines = [
        generated_header("the click commands of edgefn.cli.commands:main"),
        "# Command-line reference",
        "",
        inspect.cleandoc(main.help or ""),
        "",
        "Every command prints its part of this page with `-h` / `--help`. A flag means the same thing, with the same default, in every "
        "command that takes it. A refused input ends with one `Error: ...` line and exit code 2; a fault of "
        "the machine (a full disk, an I/O error) with one line and exit code 1.",
        "",
        md_table(["command", "what it does"], index),
        "",
    ]
    for cmd, ctx in commands:
        lines += _command_section(cmd, ctx)
    return "\n".join(lines)


# --- docs/reference.md: presets, quantization schemes, CPU targets --------------------------------------


def _scientific(value: float) -> str:
    """1e-4 rather than 0.0001, 5e-5 rather than 5e-05."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _presets_table() -> list[str]:
    from edgefn.core.presets import get_preset, list_presets

    rows, notes = [], []
    for name in list_presets(include_test=False):
        p = get_preset(name)
        h, q = p.hparams, p.quirks
        graph = q.default_optimize or "none (plain graph)"
        rows.append(
            [
                f"`{name}`",
                f"`{p.hub_id}`",
                p.description,
                _scientific(h.lr),
                str(h.batch_size),
                str(h.warmup_steps),
                str(h.epochs),
                str(h.patience),
                str(h.max_length),
                f"{h.weight_decay:g}",
                graph,
            ]
        )
        notes += [f"- `{name}`: {n}" for n in q.notes]
    header = [
        "preset",
        "hub id",
        "model",
        "lr",
        "batch",
        "warm-up steps",
        "max epochs",
        "early-stop patience",
        "max length",
        "weight decay",
        "default graph",
    ]
    tests = ", ".join(f"`{n}`" for n in list_presets() if n not in list_presets(include_test=False))
    return [
        "## Model presets",
        "",
        "`edgefn finetune PRESET` takes one of these names, a hub id (`org/name`) or a local checkpoint "
        "folder. `--lr`, `--batch-size`, `--epochs` and `--max-length` override the preset's values; the best "
        "checkpoint is chosen by weighted F1 on validation.",
        "",
        md_table(header, rows),
        "",
        "Per-architecture export notes:",
        "",
        *notes,
        "",
        f"Test presets (tiny, random init, for the test suite): {tests}.",
        "",
    ]


def _schemes_table() -> list[str]:
    from edgefn.export import schemes as q
    from edgefn.export.config import ExportConfig

    aliases = {}
    for name in q.list_schemes(include_aliases=True):
        canonical = q.get_scheme(name).name
        if canonical != name:
            aliases.setdefault(canonical, []).append(name)
    rows = [
        [
            f"`{s.name}`",
            ", ".join(f"`{a}`" for a in aliases.get(s.name, [])) or "-",
            s.description,
            ", ".join(s.execution_providers),
        ]
        for s in (q.get_scheme(n) for n in q.list_schemes())
    ]
    default = ", ".join(ExportConfig().schemes)
    return [
        "## Quantization schemes",
        "",
        f"`edgefn export --quantize` takes a comma list of these after fp32 (default: `{default}`). Each "
        "becomes `RUN/onnx/<scheme>/`. What they do on each CPU: [quantization.md](quantization.md).",
        "",
        md_table(["scheme", "alias", "what it writes", "runs on"], rows),
        "",
    ]


def _targets_table() -> list[str]:
    from edgefn.export import quantize as q

    rows = []
    for t in q.TARGETS.values():
        static = q.static_settings(t.name)
        rows.append(
            [
                f"`{t.name}`",
                f"`{q.dynamic_recipe(t.name)}`",
                f"u8 / {t.weights}" + (", 7-bit" if t.reduce_range else ""),
                "per tensor" if t.default_recipe else "per channel",
                f"u8 / {static.weights}" + (", 7-bit" if static.reduce_range else "") + ", per tensor",
                _cell(t.why),
            ]
        )
    header = [
        "`--isa`",
        "int8-dynamic recipe",
        "int8-dynamic activations / weights",
        "int8-dynamic weight scales",
        "int8-static activations / weights",
        "why",
    ]
    return [
        "## CPU targets of int8",
        "",
        "export detects the target from the CPU flags (`--isa` overrides it) and records it in each variant's "
        "`export.json`.",
        "",
        md_table(header, rows),
        "",
    ]


def render_reference() -> str:
    """docs/reference.md: the model presets, quantization schemes and CPU targets, from their registries."""
    return "\n".join(
        [
            generated_header("the registries edgefn.core.presets and edgefn.export.quantize"),
            "# Presets, quantization schemes and CPU targets",
            "",
            *_presets_table(),
            *_schemes_table(),
            *_targets_table(),
        ]
    )


# --- the README's headline table ------------------------------------------------------------------------


def render_between(current: str, begin: str, end: str, text: str, where: str) -> str:
    """A hand-written page with the text between its two markers replaced by generated `text`."""
    start, stop = current.find(begin), current.find(end)
    if start < 0 or stop < start:
        raise SystemExit(f"{where}: the markers {begin!r} ... {end!r} are missing")
    return current[: start + len(begin)] + "\n" + text + "\n" + current[stop:]


def render_readme(current: str) -> str:
    """README.md with the text between the headline markers replaced by the generated table."""
    return render_between(current, HEADLINE_BEGIN, HEADLINE_END, headline_table(), README)


def render_scaling(current: str) -> str:
    """docs/scaling.md with its measured and on-paper numbers generated from benchmarks/results/ray.json."""
    return render_between(current, SCALING_BEGIN, SCALING_END, render_scaling_section(), SCALING)


# --- pages, writing and checking ------------------------------------------------------------------------

PAGES: dict[str, Callable[[], str]] = {
    "docs/cli.md": render_cli,
    "docs/reference.md": render_reference,
    "docs/results.md": render_results,
    "docs/robustness.md": render_robustness,
}
# Hand-written pages with a generated part between markers.
MARKED: dict[str, Callable[[str], str]] = {README: render_readme, SCALING: render_scaling}


def expected_pages(root: Path = ROOT) -> dict[str, str]:
    """Relative path -> the content the generator gives it now (the marked pages included)."""
    pages = {path: render().rstrip("\n") + "\n" for path, render in PAGES.items()}
    for path, render_marked in MARKED.items():
        pages[path] = render_marked((root / path).read_text(encoding="utf-8"))
    return pages


def problems(expected: dict[str, str], root: Path) -> list[str]:
    """Every generated page under `root` that is missing or differs from `expected`, and every page marked
    as generated that the generator no longer writes."""
    out = []
    for rel, text in sorted(expected.items()):
        path = root / rel
        if not path.is_file():
            out.append(f"{rel} is missing")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"{rel} differs from what benchmarks/make_docs.py writes")
    for path in sorted((root / "docs").rglob("*.md")):
        rel = path.relative_to(root).as_posix()
        if rel not in expected and GENERATED_MARK in path.read_text(encoding="utf-8"):
            out.append(f"{rel} is marked as generated but benchmarks/make_docs.py no longer writes it")
    return out


def main() -> int:
    """Write every page whose content changed."""
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    for rel, text in expected_pages().items():
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
