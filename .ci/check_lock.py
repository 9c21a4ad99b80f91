"""Fail when constraints.txt is stale: a pyproject requirement unpinned or pinned outside its range, or the
installed environment differing from the pins (a package added, dropped or at another version).

Run inside the environment installed with `-c constraints.txt`: python .ci/check_lock.py
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"edgefn", "pip", "setuptools", "wheel"}  # the project itself and the installer's own tools


def read_pins(path: Path) -> dict[str, Version]:
    """name -> pinned version of every `name==version` line."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


LOCKED_EXTRAS = ("dev", "ray")  # the extras CI installs with the dependencies


def project_requirements() -> list[Requirement]:
    """The dependencies and the locked extras of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for name in LOCKED_EXTRAS for r in project["optional-dependencies"][name]]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def installed() -> dict[str, Version]:
    """What this environment holds, local version labels (+cpu) dropped."""
    out = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in SKIP:
            out[name] = Version(re.sub(r"\+.*$", "", dist.version))
    return out


def problems(pins: dict[str, Version], requirements: list[Requirement], env: dict[str, Version]) -> list[str]:
    """Every way the pins disagree with pyproject.toml or with the installed environment."""
    out = []
    for req in requirements:
        name = canonicalize_name(req.name)
        if name not in pins:
            out.append(f"{req.name} is required by pyproject.toml but not pinned")
        elif not req.specifier.contains(pins[name], prereleases=True):
            out.append(f"{req.name} is pinned to {pins[name]}, outside pyproject.toml's {req.specifier}")
    for name in sorted(set(pins) | set(env)):
        if name not in env:
            out.append(f"{name}=={pins[name]} is pinned but not installed")
        elif name not in pins:
            out.append(f"{name}=={env[name]} is installed but not pinned")
        elif pins[name] != env[name]:
            out.append(f"{name} is pinned to {pins[name]} but {env[name]} is installed")
    return out


def main() -> int:
    """Print the problems, exit 1 when there are any."""
    found = problems(read_pins(ROOT / "constraints.txt"), project_requirements(), installed())
    for line in found:
        print(f"constraints.txt is stale: {line}", file=sys.stderr)
    if not found:
        print(f"constraints.txt matches pyproject.toml and the {len(installed())} installed packages")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
