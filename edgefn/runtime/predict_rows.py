"""What `edgefn predict` writes per input row (JSONL or CSV), and the note that explains a null `ood`."""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from edgefn import runs
from edgefn.core.errors import ConfigError, EdgefnError

FORMATS = ("jsonl", "csv")  # what `format_rows` writes
OUTPUT_FORMATS = (*FORMATS, "parquet")  # --format; Parquet is written by scoring on Ray only
DECIMALS = 4  # probabilities, logits and OOD scores are written rounded to this many decimals


class Row(NamedTuple):
    """One input row: its text, and the value of its id column (None without one, or in a blank row)."""

    text: str
    key: Any = None


PREDICTION_FIELDS = ("label", "label_id", "prob_fake", "logits", "truncated", "ood_score", "ood", "empty")


@dataclass(frozen=True)
class RowFormat:
    """What an output row holds besides its index and prediction: the input's id column (under its own name),
    the input text (`text`, with `echo`), and the decimals its floats are rounded to (None: as computed)."""

    id_name: str | None = None
    echo: bool = False
    decimals: int | None = DECIMALS

    def __post_init__(self) -> None:
        taken = {"index", *PREDICTION_FIELDS, *(["text"] if self.echo else [])}
        if self.id_name in taken or (self.id_name or "").startswith("logit_"):
            raise EdgefnError(
                f"--id-column {self.id_name!r} is also the name of an output field; "
                "rename that column in the input, or pass --id-column '' to keep no id"
            )
        if self.decimals is not None and self.decimals < 0:
            raise EdgefnError(f"--precision must be 0 or more decimals, or full; got {self.decimals}")

    def round(self, value: float | None) -> float | None:
        """`value` to `decimals` places (-0.0 written as 0.0)."""
        if value is None or self.decimals is None:
            return value
        return round(value, self.decimals) + 0.0


def _csv_header(n_logits: int, fields: RowFormat) -> list[str]:
    names = ["real", "fake"] if n_logits == 2 else [str(k) for k in range(n_logits)]
    logits = [f"logit_{n}" for n in names]
    head = ["index", *([fields.id_name] if fields.id_name else []), *(["text"] if fields.echo else [])]
    return [*head, "label", "label_id", "prob_fake", *logits, "truncated", "ood_score", "ood", "empty"]


def _csv_value(value: Any) -> str:
    """A cell for any JSON value: a string as it is, null empty, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _csv_row(r: dict[str, Any], fields: RowFormat) -> list[Any]:
    ood = r.get("ood")
    head = [r["index"], *([_csv_value(r[fields.id_name])] if fields.id_name else [])]
    return [
        *head,
        *([r["text"]] if fields.echo else []),
        r["label"],
        r["label_id"],
        repr(r["prob_fake"]),
        *[repr(v) for v in r["logits"]],
        str(r["truncated"]).lower(),
        "" if r.get("ood_score") is None else repr(r["ood_score"]),
        "" if ood is None else str(ood).lower(),  # empty: no threshold calibrated (run `edgefn eval`)
        str(r["empty"]).lower(),
    ]


def prediction_rows(
    predictions: Sequence[Any], rows: Sequence[Row], start: int = 0, fields: RowFormat = RowFormat()
) -> list[dict[str, Any]]:
    """One dict per prediction: its index in the whole input, its row's id and text where `fields` asks, the
    prediction (floats rounded) and whether its text is empty."""
    out = []
    for i, (p, row) in enumerate(zip(predictions, rows, strict=True)):
        r: dict[str, Any] = {"index": start + i}
        if fields.id_name:
            r[fields.id_name] = row.key
        if fields.echo:
            r["text"] = row.text
        r.update(p.to_dict())
        r["prob_fake"] = fields.round(r["prob_fake"])
        r["logits"] = [fields.round(v) for v in r["logits"]]
        r["ood_score"] = fields.round(r["ood_score"])
        r["empty"] = not row.text.strip()
        out.append(r)
    return out


def format_rows(
    rows: Sequence[dict[str, Any]], fmt: str, header: bool = True, fields: RowFormat = RowFormat()
) -> str:
    """Rows as JSONL (one object per text) or CSV (index, the id column, text, label, label_id, prob_fake,
    logit_<label>..., truncated, ood_score, ood, empty), the CSV header first when `header`."""
    if fmt not in FORMATS:
        raise ConfigError("fmt", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(_csv_header(max((len(r["logits"]) for r in rows), default=2), fields))
    writer.writerows(_csv_row(r, fields) for r in rows)
    return buf.getvalue()


def ood_note(model: Path, shown: str | None = None) -> str | None:
    """The line that says why every row's `ood` is null and what calibrates it, for a variant folder with no OOD
    threshold; None when its run's ood.json has an entry for it (ignored: `read_ood` has said why).

    Args:
        model: the variant folder.
        shown: the folder as the user named it (default: `model`), for the command in the line.
    """
    folder = Path(model)
    run = folder.parent.parent
    if folder.parent.name != runs.ONNX_DIR or not (run / runs.FINETUNE_CONFIG).is_file():
        return (
            '"ood" is null: this variant is not inside a run folder (RUN/onnx/<variant>), where `edgefn eval` '
            "calibrates the out-of-distribution threshold"
        )
    if runs.json_field(run / runs.OOD_FILE, folder.name) is not None:
        return None
    data = runs.json_field(run / runs.FINETUNE_CONFIG, "data")
    words = shlex.quote(shown or str(folder)), shlex.quote(data) if isinstance(data, str) else "DATA"
    return (
        '"ood" is null: no out-of-distribution threshold for this model yet; '
        f"`edgefn eval --model {words[0]} --data {words[1]}` calibrates one ({run.name}/{runs.OOD_FILE})"
    )


@dataclass
class PredictSummary:
    """What a streamed prediction wrote: rows, and how many were fake, truncated and empty."""

    rows: int = 0
    fake: int = 0
    truncated: int = 0
    empty: int = 0

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows += len(rows)
        self.fake += sum(r["label"] == "fake" for r in rows)
        self.truncated += sum(bool(r["truncated"]) for r in rows)
        self.empty += sum(bool(r["empty"]) for r in rows)
