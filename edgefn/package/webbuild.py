"""The Node.js side of web packages: the locked npm build of the page, and runs of its tools (onnxruntime-web in
Node, Transformers.js in Node, the page in headless Chromium)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefn.core.errors import EdgefnError
from edgefn.core.progress import Progress

WEB_SOURCES = Path(__file__).resolve().parents[1] / "web"  # package.json, package-lock.json, src/, tools/
SOURCE_FILES = ("package.json", "package-lock.json", ".npmrc")
SOURCE_DIRS = ("src", "tools")
BUILD_MARKER = ".edgefn-build.json"
PAGE_FILES = ("src/index.html", "dist/edgefn-web.js")  # the page and its bundled script (`npm run build`)
ORT_DIST = Path("node_modules/onnxruntime-web/dist")
ORT_SCRIPTS = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs")  # what the page imports; no other build
ORT_WASM = "ort-wasm-simd-threaded.wasm"  # the CPU (SIMD, threads) WASM build: no WebGPU / JSEP code
CHROMIUM_FLAGS = (
    "--no-sandbox",  # root has no user namespace sandbox
    "--disable-background-networking",
    "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no update / account hosts resolve
)


@dataclass(frozen=True)
class WebBuild:
    """One `npm ci` + `npm run build` of edgefn/web in the cache; `dev` when the devDependencies are in too."""

    path: Path
    dev: bool

    @property
    def page_files(self) -> list[Path]:
        return [self.path / f for f in PAGE_FILES] + [self.path / ORT_DIST / f for f in ORT_SCRIPTS]

    @property
    def wasm(self) -> Path:
        return self.path / ORT_DIST / ORT_WASM

    def version(self, package: str) -> str | None:
        """The installed version of an npm package of the build."""
        meta = self.path / "node_modules" / package / "package.json"
        return json.loads(meta.read_text(encoding="utf-8")).get("version") if meta.is_file() else None


def require_tool(name: str, hint: str) -> str:
    """The path of an executable, or a one-line error saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise EdgefnError(f"{name} not found on PATH: {hint}")
    return path


NODE_MAJOR = 20  # playwright-core's engines field


def require_node() -> tuple[str, str]:
    """node (NODE_MAJOR or newer) and npm, or a one-line error."""
    hint = f"install Node.js {NODE_MAJOR}+ and npm (Debian: apt-get install nodejs npm)"
    node, npm = require_tool("node", hint), require_tool("npm", hint)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        raise EdgefnError(f"Node.js {version or '(unknown version)'} is too old: {hint}")
    return node, npm


def chromium_path() -> str:
    """The Chromium to drive ($EDGEFN_CHROMIUM, else chromium on PATH), or a one-line error."""
    explicit = os.environ.get("EDGEFN_CHROMIUM")
    if explicit:
        if not Path(explicit).is_file():
            raise EdgefnError(f"EDGEFN_CHROMIUM={explicit} does not exist")
        return _absolute(explicit)
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return str(shutil.which(name))
    raise EdgefnError("Chromium not found on PATH: apt-get install chromium (or set EDGEFN_CHROMIUM)")


def source_key() -> str:
    """A hash of the lock file and page sources: a new build when any of them changes."""
    h = hashlib.sha256()
    files = [WEB_SOURCES / f for f in SOURCE_FILES]
    files += sorted(p for d in SOURCE_DIRS for p in (WEB_SOURCES / d).rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(WEB_SOURCES)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """$EDGEFN_WEB_CACHE, else ~/.cache/edgefn/web (one folder per source key)."""
    explicit = os.environ.get("EDGEFN_WEB_CACHE")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgefn" / "web"
    return Path(_absolute(explicit or base))  # relative: the tools run in the build folder


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((folder / BUILD_MARKER).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _npm(npm: str, args: list[str], cwd: Path, timeout: int = 900) -> None:
    try:
        proc = subprocess.run(
            [npm, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise EdgefnError(f"`npm {' '.join(args)}` took over {timeout} s in {cwd}") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip() and "nodedir" not in ln]
        last = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise EdgefnError(
            f"`npm {' '.join(args)}` failed ({last}); the first build needs the npm registry "
            "(later ones reuse the cache)"
        )


def ensure_build(dev: bool = False, progress: Progress | None = None) -> WebBuild:
    """The page built from edgefn/web's locked dependencies: `npm ci` (`--omit=dev` unless `dev`) and
    `npm run build` in a cache folder keyed by the sources, done once; later calls need no network.

    Args:
        dev: also install the devDependencies (Transformers.js for the Node check).
        progress: called with a one-line note before a build.

    Returns:
        The build. Raises EdgefnError when node / npm are missing or npm fails.
    """
    _, npm = require_node()
    root, key = cache_root(), source_key()
    folder = root / key
    marker = _read_marker(folder)
    if marker is not None and (marker.get("dev") or not dev):
        return WebBuild(folder, bool(marker.get("dev")))
    command = "npm ci" + ("" if dev else " --omit=dev")
    if progress:
        progress(f"web: {command} && npm run build in {folder} (once per edgefn/web version)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
    except OSError as e:
        raise EdgefnError(
            f"cannot write the web build cache {root} ({e.strerror or e}); set EDGEFN_WEB_CACHE"
        ) from None
    try:
        for name in SOURCE_FILES:
            shutil.copy2(WEB_SOURCES / name, tmp / name)
        for name in SOURCE_DIRS:
            shutil.copytree(WEB_SOURCES / name, tmp / name)
        _npm(
            npm, ["ci", "--ignore-scripts", "--no-audit", "--no-fund", *([] if dev else ["--omit=dev"])], tmp
        )
        _npm(npm, ["run", "build"], tmp)
        (tmp / BUILD_MARKER).write_text(json.dumps({"key": key, "dev": dev}), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return WebBuild(folder, dev)


def _absolute(path: Path | str) -> str:
    """A path as Node must get it: absolute, since the tools run in the build folder, not the caller's."""
    return os.path.abspath(path)


def run_tool(build: WebBuild, script: str, job: dict[str, Any], timeout: int = 1800) -> dict[str, Any]:
    """Run tools/<script> with node on a JSON job; its JSON result, or a one-line error."""
    node, _ = require_node()
    with tempfile.TemporaryDirectory(prefix="edgefn-node-") as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(job), encoding="utf-8")
        try:
            proc = subprocess.run(
                [node, str(build.path / "tools" / script), str(src), str(dst)],
                cwd=build.path,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EdgefnError(f"{script} took over {timeout} s") from None
        if proc.returncode != 0 or not dst.is_file():
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            error = next((ln for ln in lines if "Error" in ln), lines[-1] if lines else "no output")
            raise EdgefnError(f"{script} failed: {error.strip()}")
        return dict(json.loads(dst.read_text(encoding="utf-8")))


def wasm_logits(
    build: WebBuild, models: dict[str, Path], inputs: list[dict[str, list[int]]], threads: int = 1
) -> dict[str, Any]:
    """Each model's logits (one text per call) in onnxruntime-web's WASM backend under Node, or its error."""
    job = {"models": {k: _absolute(v) for k, v in models.items()}, "inputs": inputs, "threads": threads}
    return run_tool(build, "wasm_check.mjs", job)


def transformers_js_predictions(
    build: WebBuild, folder: Path, dtype: str, texts: list[str]
) -> dict[str, Any]:
    """Labels and P(fake) of a web package loaded by Transformers.js in Node, offline (one text per call)."""
    if not build.dev:
        raise EdgefnError("the Transformers.js check needs the dev build (ensure_build(dev=True))")
    job = {"folder": _absolute(folder), "dtype": dtype, "texts": texts}
    return run_tool(build, "transformers_check.mjs", job)


def browser_runs(
    build: WebBuild,
    folder: Path,
    texts: list[str],
    runs: list[dict[str, Any]],
    warmup: int = 1,
    screenshot_text: str | None = None,
) -> dict[str, Any]:
    """Drive the package's page in headless Chromium, once per run spec ({model, threads, isolate,
    screenshot}): every text pasted and classified; what the page showed, every request, and its timings."""
    job = {
        "folder": _absolute(folder),
        "chromium": chromium_path(),
        "flags": list(CHROMIUM_FLAGS),
        "texts": texts,
        "warmup": warmup,
        "runs": runs,
        "screenshot_text": screenshot_text,
    }
    return run_tool(build, "browser.mjs", job)


def main(argv: list[str] | None = None) -> int:
    """`python -m edgefn.package.webbuild [--dev]`: the build `edgefn package --target web` would make, made now."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        build = ensure_build(dev="--dev" in args, progress=lambda msg: print(msg, file=sys.stderr))
    except EdgefnError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(build.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
