"""`score` (`edgefn predict --engine ray`): predict's rows scored on Ray Data by a pool of actors, each holding one
`Classifier`, on a local Ray or a cluster; Ray is imported inside functions (`pip install "edgefn[ray]"`).

The answers are local predict's: the rows are read by predict's readers (`ray_io`), each actor cleans, tokenises
and runs a batch with `Classifier.predict` and builds its rows with `prediction_rows`, and the driver numbers them
in input order (Ray Data's `preserve_order`) and writes one file by the output policy, so a run that fails leaves
nothing at the output path. An actor's threads are its CPU share: ONNX Runtime would otherwise size its pool to
the node's cores, and every actor would oversubscribe them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefn import runs
from edgefn.core import outputs
from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.progress import Progress, dropping_log_messages, silent
from edgefn.runtime.classifier import Classifier, check_variant_folder, cleaning_note, resolve_max_length
from edgefn.runtime.predict_io import WINDOW_TEXTS, WRITE_ROWS
from edgefn.runtime.predict_rows import (
    DECIMALS,
    OUTPUT_FORMATS,
    PredictSummary,
    Row,
    RowFormat,
    ood_note,
    prediction_rows,
)
from edgefn.runtime.ray_io import (
    KEY_COLUMN,
    PATH_COLUMN,
    TEXT_COLUMN,
    RowWriter,
    ScoreInput,
    open_score_input,
    read_file_rows,
)

INSTALL = 'pip install "edgefn[ray]"'
ROW_COLUMN = "row"  # what an actor returns: each output row as JSON, numbered later by the driver
READ_CPUS = 0  # reading is light; a read task that waited for a CPU held by an actor would stall the run
# Ray's notices that say nothing about this run: the local Ray it starts has token authentication on (its
# default), and a small input fills fewer batches than there are actors.
TOKEN_NOTICE = (
    ("ray._private.authentication.authentication_token_setup",),
    ("Token authentication is enabled",),
)
SMALL_INPUT_WARNING = "The minimum number of concurrent actors"
# Ray Data logs a failed task's whole traceback before it raises; the failure reaches the user as one line
# (`_failure`), and the traceback stays in the Ray session's log folder.
TASK_ERROR_LOG = (
    ("ray.data._internal.execution.streaming_executor_state", "ray.data.exceptions"),
    (
        "An exception was raised from a task of operator",
        "Exception occurred in Ray Data or Ray Core internal code",
        "Full stack trace:",
    ),
)
# a cluster address that no process answers within this is refused (Ray would retry it for minutes)
CONNECT_TIMEOUT_S = 10.0


@dataclass
class ScoreConfig:
    """What `score` reads, with which model, how it spreads over Ray, and where it writes.

    `workers` actors (default: the cluster's CPUs / `threads_per_worker`) each run one model with
    `threads_per_worker` intra-op threads, on batches of `window` rows (each sorted by token length, as
    predict's windows are). `address` names a Ray cluster (`ray start --head` prints it); without it a local Ray
    on this machine's cores is started, or the Ray this process has joined already is used."""

    model: Path
    input: str
    output: Path
    column: str = "text"
    id_column: str | None = None  # None: `id` where the input has one; "": none
    fmt: str = "jsonl"
    workers: int | None = None
    threads_per_worker: int = 1
    address: str | None = None
    batch_size: int = 32
    max_length: int | None = None
    clean: bool = True
    echo: bool = False
    precision: int | None = DECIMALS
    encoding: str = "utf-8"
    window: int = WINDOW_TEXTS

    def __post_init__(self) -> None:
        self.model, self.output, self.input = Path(self.model), Path(self.output), str(self.input)
        if self.fmt not in OUTPUT_FORMATS:
            raise ConfigError(
                "fmt", f"unknown format {self.fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
            )
        for name in ("threads_per_worker", "batch_size", "window", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(name, f"must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ScoreResult:
    """What `score` wrote (rows, fake, truncated, empty), on how many actors and CPUs, and its timings: Ray's
    start (0 when this process had joined Ray already), the first rows written, the whole run."""

    output: Path
    summary: PredictSummary
    files: int
    workers: int
    threads_per_worker: int
    cluster_cpus: int
    max_length: int
    ray_start_s: float
    first_rows_s: float
    total_s: float
    notes: tuple[str, ...] = field(default=())


def import_ray() -> Any:
    """The `ray` module with Ray Data; refused in one line, with the install command, where it is missing."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra's data libraries
    except ImportError:
        raise EdgefnError(f"scoring on Ray needs Ray, which is not installed here: {INSTALL}") from None
    return ray


class _Scorer:
    """A Ray actor: one `Classifier`, built once, that turns a batch of input rows into output rows (JSON)."""

    def __init__(
        self, model: str, threads: int, options: dict[str, Any], source: ScoreInput, fields: RowFormat
    ) -> None:
        # the tokenizer's thread pool gets the same share (set before its first use)
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
        self.clf = Classifier.from_folder(model, threads=threads, **options)
        self.parquet = source.kind == "parquet"
        self.text_column = source.column if self.parquet else TEXT_COLUMN
        self.key_column = source.id_name if self.parquet else KEY_COLUMN
        self.fields = fields

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        texts = ["" if t is None else t for t in batch.column(self.text_column).to_pylist()]
        if self.fields.id_name is None:
            keys: list[Any] = [None] * len(texts)
        elif self.parquet:
            keys = batch.column(self.key_column).to_pylist()
        else:
            keys = [json.loads(k) for k in batch.column(self.key_column).to_pylist()]
        rows = [Row(text, key) for text, key in zip(texts, keys, strict=True)]
        done = prediction_rows(self.clf.predict(texts), rows, 0, self.fields)
        return pa.table({ROW_COLUMN: pa.array([json.dumps(r) for r in done], pa.string())})


def score(config: ScoreConfig, progress: Progress = silent) -> ScoreResult:
    """Score every row of `config.input` on Ray and write them, in input order, to one file at `config.output`.

    Args:
        config: the model, the input (a file, folder or glob), the output and how the work spreads over Ray.
        progress: called with one line per step (Ray Data reports its own progress: bars on a terminal, else
            log lines).

    Returns:
        What was written, on how many actors, and how long it took. Raises EdgefnError, in one line, for a
        refused input, output, model or plan, and for a run Ray could not finish (the output is then not written).
    """
    start = time.monotonic()
    source = open_score_input(config.input, config.column, config.id_column, config.encoding)
    fields = RowFormat(source.id_name, config.echo, config.precision)
    _check_output(config, source)
    ray = import_ray()
    notes, max_length = _check_model(config)
    with _ray_session(ray, config.address) as ray_start_s:
        cpus, workers = _plan(ray, config)
        progress(
            f"Ray: {workers} workers x {config.threads_per_worker} threads on {cpus} CPUs, "
            f"{len(source.files)} {source.kind} files"
        )
        with _data_context(ray), dropping_log_messages(*TASK_ERROR_LOG):
            scored = _scored(ray, source, fields, config, workers)
            with outputs.open_output(config.output, binary=config.fmt == "parquet") as out:
                writer = RowWriter(out, config.fmt, fields, source.id_type)
                summary, first = _write(_scored_rows(scored), writer)
    return ScoreResult(
        config.output,
        summary,
        len(source.files),
        workers,
        config.threads_per_worker,
        cpus,
        max_length,
        round(ray_start_s, 3),
        round(first - start, 3),
        round(time.monotonic() - start, 3),
        notes,
    )


def _check_output(config: ScoreConfig, source: ScoreInput) -> None:
    """The output policy's checks, as local predict makes them: no input, nothing in the model or a run."""
    outputs.refuse_input_as_output(config.output, source.files, "--output")
    outputs.refuse_output_inside(config.output, config.model, "--output", "the model's folder")
    runs.refuse_output_in_run(config.output)
    outputs.check_output_file(config.output)


def _check_model(config: ScoreConfig) -> tuple[tuple[str, ...], int]:
    """The model checked on the driver as each actor will check it (files against their hashes, the token
    limit), so a refusal comes once and before Ray starts work; the notes local predict prints, and the limit."""
    folder, manifest = check_variant_folder(config.model)
    model_config = runs.read_optional_json(folder / runs.MODEL_CONFIG)
    limit = resolve_max_length(folder, manifest, model_config, config.max_length)
    notes = (cleaning_note(folder, manifest, config.clean), ood_note(folder))
    return tuple(note for note in notes if note), limit


@contextlib.contextmanager
def _ray_session(ray: Any, address: str | None) -> Iterator[float]:
    """Ray for one run: the one this process has joined already, else a local Ray on this machine's cores (or
    the cluster at `address`), shut down after the run; yields the seconds `ray.init` took."""
    if ray.is_initialized():
        if address:
            raise ConfigError(
                "address", "this process has joined a Ray cluster already; leave the address out"
            )
        yield 0.0
        return
    if address:
        _check_reachable(address)
    where = {"address": address} if address else {"num_cpus": os.cpu_count() or 1}
    start = time.monotonic()
    try:
        with dropping_log_messages(*TOKEN_NOTICE):
            ray.init(include_dashboard=False, logging_level=logging.WARNING, **where)
    except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError or ValueError here
        target = f"the Ray cluster at {address}" if address else "a local Ray"
        raise EdgefnError(f"cannot start {target}: {_last_line(e)}") from None
    try:
        yield time.monotonic() - start
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse, in one line and within `CONNECT_TIMEOUT_S`, a cluster address (HOST:PORT or ray://HOST:PORT) that
    is malformed or where nothing accepts a connection: `ray.init` would retry it for minutes. `auto` is left to
    Ray (it reads the address of the cluster this machine has joined)."""
    if address == "auto":
        return
    host, colon, port = address.split("://", 1)[-1].rpartition(":")
    if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError("address", f"{address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else e.strerror or str(e)
        raise EdgefnError(
            f"cannot reach the Ray cluster at {address} ({reason}); `ray start --head` prints the address"
        ) from None


def _plan(ray: Any, config: ScoreConfig) -> tuple[int, int]:
    """The cluster's CPUs and the actors to start: refused when they need more CPUs than the cluster has (Ray
    would wait for them forever)."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=0)
    threads = config.threads_per_worker
    if threads > largest:
        raise ConfigError(
            "threads_per_worker", f"{threads} is more than the {largest} CPUs of the largest Ray node"
        )
    workers = config.workers or max(1, cpus // threads)
    if workers * threads > cpus:
        raise ConfigError(
            "workers",
            f"{workers} x threads_per_worker {threads} need {workers * threads} CPUs; the Ray cluster has {cpus}",
            related=("threads_per_worker",),
        )
    return cpus, workers


@contextlib.contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data keeps the blocks in input order (so the driver numbers rows as predict does; the caller's setting
    comes back afterwards), and its warning that a small input cannot keep every actor busy is dropped.

    Ray Data merges what a file's read task yields into blocks of up to its `target_max_block_size` (128 MiB),
    so a file is one block, sliced into windows exactly as local predict cuts it: the same model batches, the
    same answers (an int8-dynamic model's activation scales depend on its batch). Smaller blocks would stream a
    large file to every actor, but Ray bundles them into batches that cut across local predict's windows
    (measured: 0.45% of 1M int8-dynamic labels changed), so they wait for window-aligned blocks."""
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=SMALL_INPUT_WARNING)
            yield
    finally:
        ctx.execution_options.preserve_order = saved


def _read(ray: Any, source: ScoreInput, config: ScoreConfig) -> Any:
    """The dataset of input rows: Parquet read by Ray, a text file by predict's readers in one task."""
    paths = [str(path) for path in source.files]
    if source.kind == "parquet":
        columns = [source.column, *([source.id_name] if source.id_name else [])]
        return ray.data.read_parquet(paths, columns=columns, num_cpus=READ_CPUS)
    read = {"column": source.column, "encoding": config.encoding, "id_name": source.id_name}
    rows = ray.data.from_items([{PATH_COLUMN: p} for p in paths], override_num_blocks=len(paths))
    return rows.map_batches(
        read_file_rows,
        batch_size=1,
        batch_format="pyarrow",
        fn_kwargs={**read, "window": config.window},
        num_cpus=READ_CPUS,
    )


def _scored(ray: Any, source: ScoreInput, fields: RowFormat, config: ScoreConfig, workers: int) -> Any:
    """The dataset of output rows: the input read, then `_Scorer` actors on batches of `window` rows."""
    options = {"batch_size": config.batch_size, "max_length": config.max_length, "clean": config.clean}
    return _read(ray, source, config).map_batches(
        _Scorer,
        fn_constructor_kwargs={
            "model": str(config.model),
            "threads": config.threads_per_worker,
            "options": options,
            "source": source,
            "fields": fields,
        },
        batch_size=config.window,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=config.threads_per_worker,
    )


def _scored_rows(dataset: Any) -> Iterator[list[str]]:
    """Each block of output rows (JSON) in input order; a failed run raised as one EdgefnError."""
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="pyarrow"))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - whatever a task or actor raised, wrapped by Ray
            raise _failure(e) from None
        yield batch.column(ROW_COLUMN).to_pylist()


def _write(blocks: Iterator[list[str]], writer: RowWriter) -> tuple[PredictSummary, float]:
    """Number the rows of each block in order and write them; the summary, and when the first rows were written."""
    summary = PredictSummary()
    first = 0.0
    for block in blocks:
        rows = [json.loads(text) for text in block]
        for n, row in enumerate(rows):
            row["index"] = summary.rows + n
        for start in range(0, len(rows), WRITE_ROWS):
            writer.write(rows[start : start + WRITE_ROWS])
        summary.add(rows)
        first = first or time.monotonic()
    writer.close()
    return summary, first


def _failure(e: BaseException) -> EdgefnError:
    """The EdgefnError a Ray task or actor raised (Ray wraps it, perhaps twice), else one line for the failure."""
    seen: set[int] = set()
    exc: BaseException | None = e
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cause = getattr(exc, "cause", None)  # RayTaskError: the exception the task raised
        if isinstance(exc, EdgefnError) and not isinstance(cause, BaseException):
            # Ray Data appends lines on retries to the message it passes on: the first is the error's own
            return exc if "\n" not in str(exc) else EdgefnError(str(exc).splitlines()[0])
        exc = cause if isinstance(cause, BaseException) else exc.__cause__ or exc.__context__
    return EdgefnError(f"the Ray run failed: {_last_line(e)}")


def _last_line(e: BaseException) -> str:
    """The last non-blank line of an exception's message (Ray's hold a whole traceback)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__
