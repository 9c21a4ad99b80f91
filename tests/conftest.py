"""Shared fixtures: the real data folder and tiny trained run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEFN_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared_data(*parts: str) -> Path:
    """Path under ../shared/data; skip when absent on a user's machine, fail under CI."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        msg = f"real data not found at {path} (set EDGEFN_SHARED_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + ": required under CI")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder."""
    return require_shared_data()


@pytest.fixture()
def data_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty folders as $EDGEFN_DATA_DIR ("env"), the user data folder ("user", via $XDG_DATA_HOME) and the
    checkout's shared data ("shared", via $EDGEFN_SHARED_DATA), offline: no dataset name is found but sample."""
    homes = {
        "env": tmp_path / "env",
        "user": tmp_path / "xdg" / "edgefn" / "data",
        "shared": tmp_path / "shared",
    }
    for folder in homes.values():
        folder.mkdir(parents=True)
    monkeypatch.setenv("EDGEFN_DATA_DIR", str(homes["env"]))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("EDGEFN_SHARED_DATA", str(homes["shared"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return homes


@pytest.fixture(scope="session")
def tiny_run_factory(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """Build (once per preset) a run folder holding a briefly trained tiny model on CONSTRAINT texts."""
    from tests.helpers import make_tiny_run

    cache: dict[str, Path] = {}

    def factory(preset: str = "test-tiny-bert") -> Path:
        if preset not in cache:
            root = tmp_path_factory.mktemp(f"run-{preset}")
            cache[preset] = make_tiny_run(preset, root / preset, shared_data)
        return cache[preset]

    return factory


@pytest.fixture(scope="session")
def exported_tiny_run(tiny_run_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT run with fp32 and int8-dynamic variants (built once per session; copy it before changing)."""
    import shutil

    from edgefn.export.exporter import ExportConfig, export

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(tiny_run_factory("test-tiny-bert"), run)
    export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), eval_samples=32, parity_samples=16))
    return run


@pytest.fixture()
def run(exported_tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the exported tiny run inside this test's folder (tmp_path/run)."""
    import shutil

    path = tmp_path / "run"
    shutil.copytree(exported_tiny_run, path)
    return path


# --- tiers ---------------------------------------------------------------------------------------------------
# `pytest -m "not model"` is the fast tier: tests that need no trained model (parsers, the output policy,
# options, registries, architecture), runnable alone in well under a minute. A test is in the model tier when
# it uses a trained-run fixture or its body trains, exports, benchmarks or packages a model itself.
MODEL_FIXTURES = {"tiny_run_factory", "exported_tiny_run"}
MODEL_CALLS = (
    "make_tiny_run",
    "finetune(",
    "distill(",
    "export(",
    "bench(",
    "package(",
    "run_pipeline(",
    "evaluate(",
    "Classifier.from_folder(",
    '"finetune"',
    '"export"',
    '"bench"',
    '"package"',
    '"demo"',
    '"run"',
    '"eval"',
    '"predict"',
)


def _trains(item: pytest.Item) -> bool:
    import inspect

    if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    try:
        source = inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return False
    return any(call in source for call in MODEL_CALLS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test of the model tier `model` (see MODEL_CALLS)."""
    for item in items:
        if _trains(item):
            item.add_marker(pytest.mark.model)
