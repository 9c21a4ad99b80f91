"""docs/robustness.md: out-of-domain accuracy, cleaning, int8 and the OOD flag, from benchmarks/results/robustness*."""

from __future__ import annotations

from typing import Any

from docs_common import generated_header, load, md_table, pct, result_link

METRICS = (("balanced_accuracy", "bal. acc"), ("f1_macro", "macro F1"), ("roc_auc", "ROC-AUC"))


def _model(state: dict[str, Any], arm: str, train: str) -> dict[str, Any]:
    model = state["models"].get(f"{arm}/{train}") or {}
    if "same_as" in model:  # LIAR has no cleaning rules: its raw model is the clean one
        model = state["models"].get(model["same_as"].split(" ")[0]) or {}
    return model


def _score(state: dict[str, Any], arm: str, train: str, variant: str, data: str) -> dict[str, Any] | None:
    score: dict[str, Any] | None = (_model(state, arm, train).get("scores") or {}).get(f"{variant}/{data}")
    return score


def _metric(state: dict[str, Any], arm: str, train: str, variant: str, data: str, key: str) -> float | None:
    s = _score(state, arm, train, variant, data)
    return None if s is None else s["metrics"].get(key)


def _train_sets(state: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for key in state["models"]:
        train = key.split("/", 1)[1]
        if train not in seen:
            seen.append(train)
    return seen


def _inside(data: str, train: str) -> bool:
    return data in train.split("+")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _matrix_cell(state: dict[str, Any], train: str, data: str) -> str:
    """One cell of a train x test matrix: the clean fp32 model's metrics and fake share, bold in-domain."""
    s = _score(state, "clean", train, "fp32", data)
    if s is None:
        return "-"
    text = " / ".join(f"{s['metrics'][k]:.3f}" for k, _ in METRICS)
    text += f" ({pct(s['predicted_fake_share'])} fake)"
    return f"**{text}**" if _inside(data, train) else text


def _matrix(state: dict[str, Any], datasets: list[str]) -> str:
    rows = []
    for train in _train_sets(state):
        rows.append([train, *(_matrix_cell(state, train, data) for data in datasets)])
    truth = {}
    for data in datasets:
        s = _score(state, "clean", datasets[0], "fp32", data)
        truth[data] = pct(s["metrics"]["fake_share"]) if s else "?"
    header = ["trained on \\ scored on", *(f"{d} (truly {truth[d]} fake)" for d in datasets)]
    return md_table(header, rows)


def _off_domain(state: dict[str, Any], arm: str, train: str, datasets: list[str], key: str) -> float | None:
    values = [_metric(state, arm, train, "fp32", d, key) for d in datasets if not _inside(d, train)]
    return _mean([v for v in values if v is not None])


def _in_domain(
    state: dict[str, Any], arm: str, train: str, datasets: list[str], variant: str = "fp32"
) -> float | None:
    values = [
        _metric(state, arm, train, variant, d, "balanced_accuracy") for d in datasets if _inside(d, train)
    ]
    return _mean([v for v in values if v is not None])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cleaning(state: dict[str, Any], datasets: list[str]) -> str:
    rows = []
    for train in _train_sets(state):
        raw_in, clean_in = (
            _in_domain(state, "raw", train, datasets),
            _in_domain(state, "clean", train, datasets),
        )
        cells = [f"{_fmt(raw_in)} -> {_fmt(clean_in)}"]
        for key in ("balanced_accuracy", "f1_macro"):
            a = _off_domain(state, "raw", train, datasets, key)
            b = _off_domain(state, "clean", train, datasets, key)
            cells.append(f"{_fmt(a)} -> {_fmt(b)}")
        rows.append([train, *cells])
    header = [
        "trained on",
        "in-domain bal. acc (mean)",
        "off-domain bal. acc (mean)",
        "off-domain macro F1 (mean)",
    ]
    return md_table(header, rows)


def _points(values: list[float]) -> str:
    mean = _mean(values)
    return "-" if mean is None else f"{100 * mean:+.1f}"


def _int8(state: dict[str, Any], datasets: list[str]) -> str:
    rows = []
    for train in _train_sets(state):
        cells = []
        for key in ("balanced_accuracy", "f1_macro"):
            for inside in (True, False):
                deltas = []
                for data in datasets:
                    if _inside(data, train) != inside:
                        continue
                    a = _metric(state, "clean", train, "int8-dynamic", data, key)
                    b = _metric(state, "clean", train, "fp32", data, key)
                    if a is not None and b is not None:
                        deltas.append(a - b)
                cells.append(_points(deltas))
        rows.append([train, *cells])
    header = [
        "trained on",
        "in-domain bal. acc (pts)",
        "off-domain bal. acc (pts, mean)",
        "in-domain macro F1 (pts)",
        "off-domain macro F1 (pts, mean)",
    ]
    return md_table(header, rows)


def _ood(state: dict[str, Any], datasets: list[str]) -> str:
    rows = []
    for train in _train_sets(state):
        cells = []
        for data in datasets:
            s = _score(state, "clean", train, "fp32", data)
            ood = (s or {}).get("ood") or {}
            if _inside(data, train):
                cells.append("(in domain)")
            elif not ood:
                cells.append("-")
            else:
                cells.append(f"{ood['auroc']:.3f} (flags {pct(ood['flagged_new_data'])})")
        rows.append([train, *cells])
    return md_table(["trained on", *(f"vs {d}" for d in datasets)], rows)


def _audits(state: dict[str, Any], datasets: list[str]) -> str:
    audits = state["audits"]
    cues = list(next(iter(audits.values()))["cues"])
    cols = [(d, arm) for d in datasets for arm in ("raw", "clean")]
    rows = [
        [
            f"{cue}: {audits[f'raw/{datasets[0]}']['cues'][cue]['describe']}",
            *(f"{audits[f'{arm}/{d}']['cues'][cue]['test_balanced_accuracy']:.2f}" for d, arm in cols),
        ]
        for cue in cues
    ]
    rows.append(
        [
            "every word: TF-IDF + logistic regression",
            *(f"{audits[f'{arm}/{d}']['ngrams']['test_balanced_accuracy']:.2f}" for d, arm in cols),
        ]
    )
    rows.append(
        [
            "near-duplicate train/test pairs (count)",
            *(str(audits[f"{arm}/{d}"]["near_duplicates"]["train/test"]["pairs"]) for d, arm in cols),
        ]
    )
    return md_table(["cue alone (test bal. acc)", *(f"{d} {arm}" for d, arm in cols)], rows)


def _larger(state: dict[str, Any], small: dict[str, Any], datasets: list[str]) -> list[str]:
    rows = []
    for train in _train_sets(state):
        for label, src in (
            (f"{small['settings']['rows_per_source']:,} rows per source", small),
            (f"{state['settings']['rows_per_source']:,} rows per source", state),
        ):
            rows.append([f"{train}, {label}", *(_matrix_cell(src, train, data) for data in datasets)])
    return [
        "## More rows for one union",
        "",
        f"The same union trained on more rows (command `{state['command']}`, {result_link(state['settings']['name'])}); "
        "each cell: balanced accuracy / macro F1 / ROC-AUC (share called fake), fp32, cleaned:",
        "",
        md_table(["trained on", *datasets], rows),
        "",
    ]


def render_robustness() -> str:
    """docs/robustness.md."""
    state, more = load("robustness.json"), load("robustness-3000.json")
    s = state["settings"]
    datasets = list(s["datasets"])
    return "\n".join(
        [
            generated_header("benchmarks/results/robustness.json and robustness-3000.json"),
            "# Accuracy off the training set",
            "",
            "A fake-news classifier's own test split says little about other data. A model that learns that "
            "real CONSTRAINT posts carry a link, or that real ISOT titles come from Reuters, scores high at "
            "home and calls almost everything from elsewhere one class. edgefn measures this instead of "
            "hiding it:",
            "",
            "```bash",
            "edgefn data audit constraint --no-clean     # what could a model learn besides the content?",
            "edgefn data audit constraint                # the same, as cleaned for training",
            "edgefn eval --model artifacts/minilm-constraint --data liar             # the PyTorch checkpoint",
            "edgefn eval --model artifacts/minilm-constraint/onnx/int8-dynamic --data isot --max-samples 1000",
            "edgefn finetune minilm --data constraint+liar --max-train-per-source 3000   # a union",
            "```",
            "",
            "`edgefn eval` prints the new figures beside the model's in-domain ones and writes "
            "`RUN/eval/<data>/` (metrics.json, errors.csv, confusion_matrix.png, reliability.png). Every "
            "metrics record has balanced accuracy and macro F1 beside accuracy (on a set that is 44% fake, "
            "calling everything real is 56% accurate but 0.50 balanced); finetune and eval add ROC-AUC and "
            "the expected calibration error. eval also calibrates an out-of-distribution score on the run's "
            "validation split (a threshold that 95% of in-domain texts pass), stored in `RUN/ood.json`; from "
            "then on `edgefn predict` reports `ood_score` and `ood` for every text. Cleaning rules and the "
            "shortcut cues of each dataset: [data.md](data.md).",
            "",
            "## The measurement",
            "",
            f"minilm fine-tuned on each dataset and on each union of two: {s['rows_per_source']:,} training "
            f"rows per source, {s['epochs']} epoch, max length {s['max_length']}; each model exported (fp32, "
            f"int8-dynamic) and scored with `edgefn eval` on a sample of {s['test_rows']} rows of every "
            "dataset's test split. These are small trainings sized for a 2-core CPU: the in-domain figures "
            "are below those of fully trained models ([results.md](results.md#accuracy-minilm-on-three-datasets-fp32-and-int8)). "
            f"Command `{state['command']}`, {result_link('robustness')}. {state['note'][0].upper() + state['note'][1:]}.",
            "",
            "## Balanced accuracy, macro F1 and ROC-AUC",
            "",
            "Each cell: balanced accuracy / macro F1 / ROC-AUC, and the share of texts the model calls fake; "
            "bold: in domain. fp32, trained and scored on cleaned data (edgefn's default):",
            "",
            _matrix(state, datasets),
            "",
            "Where ROC-AUC stays well above balanced accuracy off the diagonal, the model still ranks the "
            "texts but its decision threshold does not transfer, which no in-domain metric shows. A union of "
            "two lifts some off-domain cells and costs some in-domain accuracy; it is no cure.",
            "",
            "## What cleaning changed",
            "",
            "The same trainings with `--no-clean` (raw) against edgefn's default cleaning, each scored on "
            "data cleaned the same way as its training data (LIAR has no cleaning rules):",
            "",
            _cleaning(state, datasets),
            "",
            "## int8-dynamic against fp32",
            "",
            "Differences in percentage points, in domain beside out of domain (mean over the cells of each "
            "kind):",
            "",
            _int8(state, datasets),
            "",
            "## The out-of-distribution flag",
            "",
            "AUROC of the energy score at telling the model's in-domain test texts from another dataset's, "
            "and the share of that dataset flagged at the threshold that passes 95% of in-domain validation "
            "texts (fp32, cleaned). A hint to check, not a guard:",
            "",
            _ood(state, datasets),
            "",
            "## Shortcut audits",
            "",
            "`edgefn data audit`: balanced accuracy on the test split of a classifier that sees only one cue, "
            "raw and as cleaned; near-duplicates by MinHash on word 3-shingles, Jaccard >= 0.8:",
            "",
            _audits(state, datasets),
            "",
            *_larger(more, state, datasets),
        ]
    )
