"""The dependency lock: constraints.txt agrees with pyproject.toml, and the staleness check can fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_lock", ROOT / ".ci" / "check_lock.py")
assert _spec is not None and _spec.loader is not None
check_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_lock)


def test_every_requirement_is_pinned_inside_its_range():
    """Each pyproject dependency (and dev tool) has a pin in constraints.txt that its specifier accepts."""
    pins = check_lock.read_pins(ROOT / "constraints.txt")
    requirements = check_lock.project_requirements()
    assert [p for p in check_lock.problems(pins, requirements, pins) if "pyproject" in p] == []
    assert Version("4.58") > pins["transformers"] and pins["torch"] == Version("2.13.0")


def test_stale_lock_is_reported():
    """A requirement without a pin, a pin outside the range and an environment that differs all count."""
    pins = {"torch": Version("2.13.0"), "numpy": Version("1.26.4")}
    requirements = [Requirement("torch>=2.2"), Requirement("numpy>=2"), Requirement("click>=8.1")]
    env = {"torch": Version("2.13.0"), "numpy": Version("1.26.4"), "extra-pkg": Version("1.0")}
    found = check_lock.problems(pins, requirements, env)
    assert found == [
        "numpy is pinned to 1.26.4, outside pyproject.toml's >=2",
        "click is required by pyproject.toml but not pinned",
        "extra-pkg==1.0 is installed but not pinned",
    ]
