"""package(cfg) -> PackageResult: a run's variants as RUN/package/<target>/, written by its target."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.environment import check_threads
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.progress import Progress, silent, wrap_line
from edgefn.package.targets import PackageJob, get_target, target_names
from edgefn.runs import RunFolder


@dataclass
class PackageConfig:
    """What to package: the run, the target (web or mobile), which variants, and how many texts to check."""

    target: str
    run_dir: Path | None = None
    variants: tuple[str, ...] | None = (
        None  # default: web fp32 + the first int8 that runs in WASM + fp16; mobile CPU ones
    )
    check_samples: int = 100  # validation texts each packaged model is checked on
    browser_check: bool = False  # web: also run the page in headless Chromium on the check texts
    threads: int | None = None  # ONNX Runtime threads of the Python side of the checks
    overwrite: bool = False

    def __post_init__(self) -> None:
        target = get_target(self.target)
        if self.browser_check and not target.browser_check:
            able = [n for n in target_names() if get_target(n).browser_check]
            raise ConfigError("browser_check", f"applies to target {' or '.join(able)} only", ("target",))
        if self.check_samples < 1:
            raise ConfigError("check_samples", f"must be a positive integer, got {self.check_samples}")
        check_threads(self.threads)
        if self.variants is not None:
            self.variants = tuple(dict.fromkeys(v.strip() for v in self.variants if v.strip())) or None
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)


@dataclass
class PackageResult:
    """The package folder and its manifest (edgefn_package.json)."""

    target: str
    folder: Path
    run_dir: Path
    picked_automatically: bool
    manifest: runs.PackageManifest
    notes: list[str] = field(default_factory=list)


def package(cfg: PackageConfig, progress: Progress | None = None) -> PackageResult:
    """Write RUN/package/<target>/ from the run's exported variants, after checking every packaged model
    (see the target's checks); nothing is left behind when a check or a tool fails.

    Args:
        cfg: the target, the run (None: the most recent under artifacts/), the variants, the check size.
        progress: called with a one-line description of each step (the CLI prints them).

    Returns:
        The folder and its manifest. Raises EdgefnError for a run without variants, an unknown variant, a
        missing Node.js / npm / Chromium, or a model that fails its check.
    """
    run, picked = RunFolder.resolve(cfg.run_dir)
    run.require_complete()
    for name in sorted(set(cfg.variants or ()) & set(run.incomplete_variants())):  # no export.json
        run.verify_variant(name)  # refused with the re-export command
    names = run.variant_names()
    if not names:
        raise EdgefnError(
            f"{run.path} has no exported variants (nothing complete in {run.onnx_dir}); "
            f"run `edgefn export --run-dir {run.path}` first"
        )
    unknown = [v for v in cfg.variants or () if v not in names]
    if unknown:
        raise EdgefnError(
            f"unknown variant {', '.join(unknown)} for {run.path}; its variants: {', '.join(names)}"
        )
    final = run.package_dir(cfg.target)
    outputs.check_output_dir(final, overwrite=cfg.overwrite, owned=_is_package, kind="package folder")
    target = get_target(cfg.target)
    target.prepare(cfg.browser_check)
    manifests = {n: run.verify_variant(n) for n in (cfg.variants or names)}
    job = PackageJob(run, progress or silent, manifests, cfg.variants, cfg.threads, cfg.browser_check)
    job.texts = run.read_split("validation").texts[: cfg.check_samples]
    if not job.texts:
        raise EdgefnError(f"{run.split_file('validation')} is empty: nothing to check the package on")
    with (
        run.lock("package"),
        _clean_parent(final),
        runs.atomic_dir(final, overwrite=cfg.overwrite, owned=_is_package, kind="package folder") as tmp,
    ):
        manifest = target.write(job, tmp)
        hashes = runs.hash_files(tmp)
        files = {k: v for k, v in hashes.items() if k != runs.PACKAGE_MANIFEST}
        manifest = dataclasses.replace(manifest, files_sha256=files)
        runs.write_json(tmp / runs.PACKAGE_MANIFEST, manifest)
    return PackageResult(cfg.target, final, run.path, picked, manifest, job.notes)


def _is_package(folder: Path) -> bool:
    return runs.is_manifested_dir(folder, runs.PACKAGE_MANIFEST)


@contextlib.contextmanager
def _clean_parent(final: Path) -> Iterator[None]:
    """Remove RUN/package/ again when the first package written into it fails."""
    existed = final.parent.exists()
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                final.parent.rmdir()
        raise


def format_summary(result: PackageResult) -> str:
    """A few lines: the folder, each packaged model with its size and check, and the notes."""
    m = result.manifest
    lines = [f"{result.target} package: {result.folder}"]
    for model in m.models or []:
        check = model.get("wasm_check") or model.get("check_against_onnx") or {}
        where = get_target(result.target).checked_against
        lines.append(
            f"  {model['file']}: {model['variant']}, {model['size_mb']:.1f} MB, agreement with {where} "
            f"{check.get('agreement', float('nan')):.1%} on {check.get('samples', 0)} validation texts"
        )
    for dtype, mb in (m.download_mb or {}).items():
        lines.append(f"  page download with {dtype}: {mb:.1f} MB")
    for dtype, check in (m.browser_check or {}).items():
        if isinstance(check, dict):
            lines.append(
                f"  in Chromium, {dtype}: agreement {check['agreement']:.1%} on {check['samples']} texts, "
                f"{check['ms_per_text_p50']:.1f} ms per text (p50)"
            )
    lines.append(f"  {get_target(result.target).usage(result.folder)}")
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"warning (finetune): {w}" for w in (m.model or {}).get("warnings") or []]
    return "\n".join(wrap_line(line) for line in lines)
