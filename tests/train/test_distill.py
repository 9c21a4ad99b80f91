"""`edgefn distill`: the student's layers and weights, the KD loss, a student that learned, its folder taken by
export / predict / bench --compare / show, and bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from edgefn import runs
from edgefn.cli.commands import main
from edgefn.core.errors import ConfigError
from edgefn.runs import RunFolder
from edgefn.train.config import DistillSettings
from edgefn.train.distill import DistillConfig
from edgefn.train.student import hidden_loss, kd_loss, load_student, spread_layers


def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


# --- the loss and the layer choice (no model) ---------------------------------------------------------------


def test_kd_loss_is_t_squared_kl_plus_cross_entropy():
    """kd_loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y), by hand."""
    s = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5]])
    t = torch.tensor([[1.0, 0.0], [-2.0, 2.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 1])
    for temperature, alpha in ((1.0, 0.5), (4.0, 0.7), (2.0, 1.0), (3.0, 0.0)):
        p_t = torch.softmax(t / temperature, -1)
        kl = (p_t * (p_t.log() - torch.log_softmax(s / temperature, -1))).sum(-1).mean()
        ce = -torch.log_softmax(s, -1)[torch.arange(3), y].mean()
        expected = alpha * temperature**2 * kl + (1 - alpha) * ce
        assert kd_loss(s, t, y, temperature, alpha).item() == pytest.approx(expected.item(), rel=1e-5)
    assert kd_loss(t, t, y, 3.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)  # the student is the teacher


def test_kd_loss_t_squared_keeps_the_soft_gradient_scale():
    """With T^2 the soft term's gradient tends to (s - t) / (2N) per logit as T grows (Hinton et al.): it keeps
    its scale from T = 4 to T = 16, where without T^2 it would shrink 16-fold."""
    t = torch.tensor([[1.0, -1.0], [0.2, 0.4]])
    norms = []
    for temperature in (4.0, 16.0):
        s = torch.tensor([[0.5, 0.0], [1.0, -0.5]], requires_grad=True)
        kd_loss(s, t, torch.tensor([0, 1]), temperature, 1.0).backward()
        assert s.grad is not None
        norms.append(s.grad.norm().item())
    assert norms[1] == pytest.approx(norms[0], rel=0.1)
    centred = lambda x: x - x.mean(-1, keepdim=True)  # noqa: E731 - the softmax only sees differences
    s = torch.tensor([[0.5, 0.0], [1.0, -0.5]])
    limit = (centred(s) - centred(t)) / (2 * 2)
    assert norms[1] == pytest.approx(limit.norm().item(), rel=0.05)


def test_hidden_loss_matches_copied_layers_over_real_tokens():
    """Student layer j is compared with the teacher layer it came from (hidden_states[i + 1]); padding is
    left out and the error is averaged over real tokens, width and layers."""
    torch.manual_seed(0)
    teacher = [torch.randn(2, 3, 4) for _ in range(5)]  # embeddings + 4 layers
    student = [teacher[0], teacher[2].clone(), teacher[4].clone()]  # layers 1 and 3 kept
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert hidden_loss(student, teacher, (1, 3), mask).item() == pytest.approx(0.0)
    student[1][0, 2] += 100.0  # a padding position: ignored
    assert hidden_loss(student, teacher, (1, 3), mask).item() == pytest.approx(0.0)
    student[2][1, 0, 0] += 2.0  # one real value of the second layer off by 2: 4 / (5 tokens x 4) / 2 layers
    assert hidden_loss(student, teacher, (1, 3), mask).item() == pytest.approx(4 / 20 / 2)


def test_layers_are_evenly_spaced_from_the_first():
    """Every k-th layer where the count divides (6 -> 3: 0, 2, 4), evenly spaced otherwise."""
    assert spread_layers(6, 3) == (0, 2, 4) and spread_layers(6, 2) == (0, 3) and spread_layers(6, 1) == (0,)
    assert spread_layers(6, 4) == (0, 1, 3, 4) and spread_layers(12, 6) == (0, 2, 4, 6, 8, 10)
    assert spread_layers(2, 2) == (0, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "layers: is required"),
        ({"layers": 0}, "layers: must be positive"),
        ({"layer_map": (2, 0)}, "layer_map: must name teacher layers in increasing order, got 2,0"),
        ({"layers": 2, "layer_map": (0,)}, "layer_map: names 1 layers but layers is 2"),
        ({"layers": 1, "temperature": 0.0}, "temperature: must be positive"),
        ({"layers": 1, "alpha": 1.5}, "alpha: must be between 0 and 1"),
        ({"layers": 1, "kd": False, "hidden_weight": 1.0}, "hidden_weight: is a distillation loss"),
    ],
)
def test_bad_settings_are_refused_by_field(kwargs: dict, message: str, tmp_path: Path):
    """Each refused value names its field."""
    with pytest.raises(ConfigError, match=message):
        DistillConfig(teacher=tmp_path, **kwargs)


def test_teacher_that_is_no_run_is_one_line_exit_2(tmp_path: Path):
    """A --teacher folder that is no run folder: one line naming --teacher, exit 2, nothing written."""
    (tmp_path / "notes.txt").write_text("not a run")
    code, out = _cli(
        ["distill", "--teacher", str(tmp_path), "--layers", "1", "--run-dir", str(tmp_path / "s")]
    )
    assert code == 2 and out.strip().count("\n") == 0
    assert out.startswith("Error: --teacher:") and "is not an edgefn run folder" in out
    assert not (tmp_path / "s").exists()


# --- the student's weights (teachers from the tiny run factory) ---------------------------------------------


def _settings(teacher: Path, layers: tuple[int, ...], kd: bool = False) -> DistillSettings:
    config = runs.read_json_object(RunFolder(teacher).checkpoint / runs.MODEL_CONFIG)
    count = config.get("num_hidden_layers") or config.get("n_layers")
    return DistillSettings(
        teacher=str(teacher), teacher_sha256="-", teacher_layers=count, layers=layers, kd=kd
    )


@pytest.mark.parametrize(
    ("preset", "prefix"),
    [
        ("test-tiny-bert", "bert.encoder.layer"),
        ("test-tiny-mobilebert", "mobilebert.encoder.layer"),
        ("test-tiny-distilbert", "distilbert.transformer.layer"),
    ],
)
def test_student_has_the_chosen_teacher_layers(preset: str, prefix: str, tiny_run_factory, tmp_path: Path):
    """A 1-layer student of teacher layer 1, saved and reloaded: layer 0 holds the teacher's layer 1, every other
    weight (embeddings, pooler, head) is the teacher's, and the config says 1 layer."""
    from safetensors.torch import load_file

    teacher = tiny_run_factory(preset)
    loaded, model = load_student(_settings(teacher, (1,)))
    assert model is None  # kd off: no teacher kept for the loss
    loaded.model.save_pretrained(tmp_path)
    student = load_file(str(tmp_path / runs.SAFETENSORS_WEIGHTS))
    taught = load_file(str(RunFolder(teacher).checkpoint / runs.SAFETENSORS_WEIGHTS))
    assert (
        json.loads((tmp_path / runs.MODEL_CONFIG).read_text())["model_type"] == loaded.model.config.model_type
    )
    assert loaded.model.config.num_hidden_layers == 1
    assert not any(k.startswith(f"{prefix}.1.") for k in student)
    layer = [k for k in student if k.startswith(f"{prefix}.0.")]
    assert layer and all(torch.equal(student[k], taught[k.replace(".0.", ".1.", 1)]) for k in layer)
    rest = [k for k in student if not k.startswith(prefix)]
    assert rest and all(torch.equal(student[k], taught[k]) for k in rest)


def test_albert_student_runs_the_shared_layer_fewer_times(tiny_run_factory):
    """ALBERT: the student keeps every (shared) weight and applies its layer 2 times instead of 4, so its outputs
    change; --layer-map is refused in one line saying why."""
    teacher = tiny_run_factory("test-tiny-albert")
    loaded, model = load_student(_settings(teacher, spread_layers(4, 2), kd=True))
    assert model is not None and loaded.model.config.num_hidden_layers == 2
    assert model.config.num_hidden_layers == 4
    ids = loaded.tokenizer(["a short text to encode"], return_tensors="pt")
    pairs = zip(loaded.model.state_dict().items(), model.state_dict().items())
    assert all(a == b and torch.equal(x, y) for (a, x), (b, y) in pairs)
    with torch.no_grad():
        assert not torch.allclose(loaded.model.eval()(**ids).logits, model(**ids).logits)
    code, out = _cli(["distill", "--teacher", str(teacher), "--layer-map", "0,1", "--run-dir", "unused"])
    assert code == 2 and out.strip().count("\n") == 0
    assert "--layer-map: ALBERT's layers are one set of shared weights" in out


def test_more_layers_than_the_teacher_and_unrecorded_settings_are_refused(tiny_run_factory, tmp_path: Path):
    """--layers over the teacher's count and a teacher whose finetune_config.json records no settings (made by
    the test helper, not `edgefn finetune`): one line each, exit 2, no run folder."""
    teacher = tiny_run_factory("test-tiny-bert")
    student = tmp_path / "student"
    for args, message in (
        (["--layers", "3"], "--layers: 3 is more than the teacher's 2 layers"),
        (["--layer-map", "0,2"], "--layer-map: names layer 2, but the teacher's layers are 0 to 1"),
        (["--layers", "1"], "--teacher: "),
    ):
        code, out = _cli(["distill", "--teacher", str(teacher), *args, "--run-dir", str(student)])
        assert code == 2 and out.strip().count("\n") == 0 and message in out, out
        assert not student.exists()
    assert "records no fine-tune settings" in out


# --- a real teacher and its student (finetune on the sample corpus) -----------------------------------------


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT fine-tuned by `finetune` on the sample corpus (test accuracy near 0.97)."""
    from edgefn.train.finetune import FinetuneConfig, finetune

    path = tmp_path_factory.mktemp("distill") / "teacher"
    finetune(
        FinetuneConfig(preset="test-tiny-bert", data="sample", max_length=64, epochs=3, lr=5e-3, run_dir=path)
    )
    return path


@pytest.fixture(scope="module")
def student(teacher: Path) -> Path:
    """A 1-layer student of `teacher`, distilled through the CLI for 2 epochs."""
    path = teacher.parent / "student"
    code, out = _cli(
        ["distill", "--teacher", str(teacher), "--layers", "1", "--epochs", "2", "--run-dir", str(path)]
    )
    assert code == 0, out
    return path


@pytest.fixture(scope="module")
def exported(teacher: Path, student: Path) -> tuple[Path, Path]:
    """Both runs exported to fp32 and int8-dynamic."""
    from edgefn.export.exporter import ExportConfig, export

    for run in (teacher, student):
        export(ExportConfig(run_dir=run, schemes=("int8-dynamic",), eval_samples=32, parity_samples=16))
    return teacher, student


def _untrained_accuracy(student: Path) -> float:
    """Test accuracy of a randomly initialised model of the student's architecture."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    run = RunFolder(student)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(run.checkpoint)).eval()
    tok = AutoTokenizer.from_pretrained(run.checkpoint)
    test = run.read_split("test")
    with torch.no_grad():
        logits = model(
            **tok(test.texts, truncation=True, max_length=64, padding=True, return_tensors="pt")
        ).logits
    return sum(int(p == y) for p, y in zip(logits.argmax(-1).tolist(), test.labels)) / len(test)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.model
def test_a_student_never_writes_into_its_teacher_or_another_run(teacher: Path, tmp_path: Path):
    """--run-dir the teacher itself (with --overwrite, which would replace it), inside the teacher, or a folder
    that holds the teacher: one line, exit 2, the teacher's files unchanged; finetune refuses a run inside a run."""
    before = _tree(teacher)
    for run_dir, extra, message in (
        (teacher, ["--overwrite"], "is or holds the teacher's run folder"),
        (teacher / "student", [], f"is inside the edgefn run {teacher.resolve()}"),
        (teacher.parent, ["--overwrite"], "is or holds the teacher's run folder"),
    ):
        args = ["distill", "--teacher", str(teacher), "--layers", "1", "--run-dir", str(run_dir), *extra]
        code, out = _cli(args)
        assert code == 2 and out.strip().count("\n") == 0 and "--run-dir" in out and message in out, out
    assert _tree(teacher) == before and not (teacher / "student").exists()
    code, out = _cli(
        ["finetune", "test-tiny-bert", "--data", "sample", "--run-dir", str(teacher / "onnx" / "x")]
    )
    assert code == 2 and "is inside the edgefn run" in out and not (teacher / "onnx" / "x").exists(), out


@pytest.mark.model
def test_distilled_student_beats_an_untrained_one_and_records_its_teacher(teacher: Path, student: Path):
    """The 1-layer student learned (well above a random init of its architecture, near its 2-layer teacher)
    and its run folder records the teacher, the layers and the loss; the teacher's data and splits are its own."""
    metrics = RunFolder(student).read_metrics()
    accuracy = metrics["test"]["accuracy"]
    assert accuracy >= 0.8 and accuracy > _untrained_accuracy(student) + 0.2
    d = metrics["distillation"]
    assert d["teacher"] == str(teacher.resolve()) and d["layers"] == [0] and d["teacher_layers"] == 2
    assert d["kd"] is True and d["temperature"] == 2.0 and d["alpha"] == 0.5
    assert d["teacher_test_accuracy"] == RunFolder(teacher).read_metrics()["test"]["accuracy"]
    assert RunFolder(student).read_finetune_config().distillation["teacher"] == d["teacher"]
    for split in ("validation", "test"):
        assert RunFolder(student).read_split(split) == RunFolder(teacher).read_split(split)
    assert RunFolder(student).status() == "complete"
    assert (
        json.loads((RunFolder(student).checkpoint / runs.MODEL_CONFIG).read_text())["num_hidden_layers"] == 1
    )


@pytest.mark.model
def test_export_and_predict_take_the_student(exported: tuple[Path, Path]):
    """The student's folder exports (parity against its PyTorch checkpoint) and predicts like any run's."""
    _, student = exported
    manifest = RunFolder(student).verify_variant("int8-dynamic")
    assert manifest.validation_accuracy is not None
    code, out = _cli(["predict", "--model", str(RunFolder(student).variant_dir("int8-dynamic")), "one text"])
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]  # stderr's note aside
    assert code == 0 and len(rows) == 1 and rows[0]["label"] in ("fake", "real")


@pytest.mark.model
def test_bench_compare_puts_teacher_and_student_in_one_report(exported: tuple[Path, Path]):
    """bench --compare TEACHER: the teacher's int8 row beside the student's in one report and one verdict cell,
    scored on the same test rows; the teacher's own folder is left as it was."""
    from edgefn.bench.report import BenchReport

    teacher, student = exported
    before = sorted(p.name for p in teacher.iterdir())
    args = [
        "bench",
        "--run-dir",
        str(student),
        "--compare",
        str(teacher),
        "--quick",
        "--variants",
        "int8-dynamic",
    ]
    code, out = _cli(
        [*args, "--batch-sizes", "1", "--min-time", "0", "--max-test-samples", "20", "--no-fixed-shape"]
    )
    assert code == 0, out
    report = BenchReport.from_json(RunFolder(student).bench_file("json"))
    rows = {r.variant: r for r in report.results}
    assert set(rows) == {"int8-dynamic", "teacher/int8-dynamic"}
    assert rows["teacher/int8-dynamic"].run == str(teacher) and rows["int8-dynamic"].run is None
    assert all(
        r.status == "ok" and r.accuracy is not None and r.accuracy.samples == 20 for r in rows.values()
    )
    (cell,) = report.verdict  # real lengths, batch 1: both rows are ranked (or one is out on accuracy)
    ranked = {c["variant"] for c in (cell["winner"], cell["runner_up"]) if c}
    excluded = {e.split(" ")[0] for e in cell["excluded_for_accuracy"]}
    assert ranked | excluded == {"int8-dynamic", "teacher/int8-dynamic"}
    assert "teacher/int8-dynamic" in out and sorted(p.name for p in teacher.iterdir()) == before


@pytest.mark.model
def test_show_puts_the_students_eval_beside_the_teachers(exported: tuple[Path, Path]):
    """`edgefn eval` on both runs' int8 variants with the same data; `show` on the student lists the teacher's
    accuracy in the same row."""
    teacher, student = exported
    for run in (teacher, student):
        variant = str(RunFolder(run).variant_dir("int8-dynamic"))
        code, out = _cli(
            ["eval", "--model", variant, "--data", "sample", "--split", "all", "--max-samples", "40"]
        )
        assert code == 0, out
    taught = json.loads(
        (RunFolder(teacher).eval_dir("sample-all", "int8-dynamic") / runs.METRICS).read_text()
    )
    code, out = _cli(["show", "--run-dir", str(student)])
    assert code == 0 and "teacher acc" in out and f"student of {teacher.resolve()}" in out
    (row,) = [line for line in out.splitlines() if line.strip().startswith("sample ")]
    assert row.split()[-1] == f"{taught['metrics']['accuracy']:.4f}"


@pytest.mark.model
def test_no_kd_student_with_teacher_labelled_texts(teacher: Path, tmp_path: Path):
    """--no-kd --unlabelled: plain layer dropping trained on the labels plus texts the teacher labelled (empty
    lines and texts of the test split dropped); the record says so."""
    test = RunFolder(teacher).read_split("test")
    unlabelled = tmp_path / "extra.txt"
    unlabelled.write_text("\n".join(["a new claim about vaccines", "", test.texts[0], "another post"]) + "\n")
    path = tmp_path / "plain"
    code, out = _cli(
        ["distill", "--teacher", str(teacher), "--layers", "1", "--no-kd", "--unlabelled", str(unlabelled)]
        + ["--epochs", "1", "--max-train-samples", "64", "--run-dir", str(path)]
    )
    assert code == 0, out
    d = RunFolder(path).read_metrics()["distillation"]
    assert d["kd"] is False and d["unlabelled"]["rows_read"] == 4 and d["unlabelled"]["rows_used"] == 2
    assert d["unlabelled"]["sha256"] == runs.sha256_file(unlabelled)
    assert RunFolder(path).read_metrics()["training"]["train_samples"] == 66
    assert "no KD (labels only)" in out and math.isfinite(RunFolder(path).read_metrics()["test"]["accuracy"])


@pytest.mark.model
def test_hidden_state_transfer_trains(teacher: Path, tmp_path: Path):
    """--hidden-weight adds the hidden-state loss to KD: the student trains and records the weight."""
    from edgefn.train.distill import distill

    cfg = DistillConfig(
        teacher, layers=1, hidden_weight=1.0, epochs=1, max_train_samples=32, run_dir=tmp_path / "h"
    )
    metrics = distill(cfg).metrics
    losses = [e["loss"] for e in metrics["training"]["log_history"] if "loss" in e]
    assert (
        metrics["distillation"]["hidden_weight"] == 1.0 and losses and all(math.isfinite(v) for v in losses)
    )


@pytest.mark.model
def test_a_finished_student_is_kept_and_resume_checks_its_settings(
    teacher: Path, student: Path, tmp_path: Path
):
    """Distilling again into a finished student's folder is refused (as finetune refuses), and --resume with
    another setting names it: one line each, exit 2."""
    copy = tmp_path / "student"
    shutil.copytree(student, copy)
    code, out = _cli(
        ["distill", "--teacher", str(teacher), "--layers", "1", "--epochs", "2", "--run-dir", str(copy)]
    )
    assert code == 2 and "already holds a finished run with the same settings" in out
    code, out = _cli(
        [
            "distill",
            "--teacher",
            str(teacher),
            "--layers",
            "1",
            "--epochs",
            "3",
            "--run-dir",
            str(copy),
            "--resume",
        ]
    )
    assert code == 2 and "cannot resume" in out and "settings differ (epochs)" in out
