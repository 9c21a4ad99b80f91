"""Torch-free ONNX Runtime classifier for exported variant folders: onnxruntime, tokenizers and numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.errors import EdgefnError

DEFAULT_MAX_LENGTH = 512
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


@dataclass(frozen=True)
class Prediction:
    """One text's prediction: label name and id, probability of fake, raw logits, and whether it was cut."""

    label: str
    label_id: int
    prob_fake: float
    logits: tuple[float, ...]
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the prediction."""
        return {
            "label": self.label,
            "label_id": self.label_id,
            "prob_fake": self.prob_fake,
            "logits": list(self.logits),
            "truncated": self.truncated,
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def resolve_provider(provider: str) -> str:
    """Map `cpu` / `cuda` / a full EP name to an available ONNX Runtime execution provider."""
    import onnxruntime as ort

    name = PROVIDER_ALIASES.get(provider.lower(), provider)
    available = ort.get_available_providers()
    if name not in available:
        raise EdgefnError(
            f"execution provider {name} is not available in this onnxruntime build; "
            f"available: {', '.join(available)}"
            + (" (install onnxruntime-gpu for CUDA)" if name == "CUDAExecutionProvider" else "")
        )
    return name


def _create_session(model: Path, provider: str, threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(model), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for broken files
        raise EdgefnError(f"onnxruntime cannot load {model}: {str(e).splitlines()[0]}") from None
    if provider not in session.get_providers():  # e.g. CUDA libraries missing: ORT falls back silently
        raise EdgefnError(
            f"{provider} could not be initialised (session runs on {', '.join(session.get_providers())}); "
            "check the CUDA / cuDNN installation"
        )
    return session


def _read_optional_json(path: Path) -> dict[str, Any]:
    return runs.read_json(path) if path.is_file() else {}


def resolve_max_length(
    folder: Path, manifest: dict[str, Any], config: dict[str, Any], max_length: int | None
) -> int:
    """Token limit: explicit value, else the export's or the run's fine-tuning max_length, else 512.

    The result never exceeds the model's `max_position_embeddings`.
    """
    limit = config.get("max_position_embeddings")
    if max_length is not None:
        if max_length < 2:
            raise EdgefnError(f"--max-length must be at least 2, got {max_length}")
        if limit and max_length > limit:
            raise EdgefnError(
                f"--max-length {max_length} exceeds the model's max_position_embeddings ({limit})"
            )
        return max_length
    run_config = _read_optional_json(folder.parent.parent / runs.FINETUNE_CONFIG)
    chosen = manifest.get("max_length") or run_config.get("max_length") or DEFAULT_MAX_LENGTH
    return min(int(chosen), int(limit)) if limit else int(chosen)


def _load_tokenizer(folder: Path, max_length: int) -> tuple[Any, int]:
    """The fast tokenizer with truncation enabled, and the id used for padding."""
    from tokenizers import Tokenizer

    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise EdgefnError(f"{path} is missing: the variant folder needs the fast tokenizer file")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # padding is done per length-sorted batch
    tokenizer.enable_truncation(max_length)
    pad_id = (tokenizer.padding or {}).get("pad_id")
    if pad_id is None:
        pad_token = _read_optional_json(folder / "tokenizer_config.json").get("pad_token", "[PAD]")
        pad_id = tokenizer.token_to_id(pad_token if isinstance(pad_token, str) else pad_token.get("content"))
    return tokenizer, int(pad_id or 0)


def _variant_hint(folder: Path) -> str:
    """What to pass instead of a folder without model.onnx (a run folder lists its variants)."""
    variants = [p.name for p in runs.list_variants(folder)]
    if variants:
        return f"this is a run folder; pass one of its variants: {', '.join(str(folder / runs.ONNX_DIR / v) for v in variants)}"
    return "pass a variant folder such as RUN/onnx/int8-dynamic (made by `edgefn export`)"


def _id2label(config: dict[str, Any]) -> dict[int, str]:
    raw = config.get("id2label") or {"0": "real", "1": "fake"}
    return {int(k): str(v) for k, v in raw.items()}


class Classifier:
    """An exported variant folder ready to classify texts with ONNX Runtime."""

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        pad_id: int,
        id2label: dict[int, str],
        batch_size: int = 32,
        max_length: int = DEFAULT_MAX_LENGTH,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise EdgefnError(f"--batch-size must be a positive integer, got {batch_size}")
        self.session = session
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.id2label = id2label
        self.batch_size = batch_size
        self.max_length = max_length
        self.manifest = manifest or {}
        self.input_names = [i.name for i in session.get_inputs()]
        self.fake_id = next((i for i, name in id2label.items() if name == "fake"), 1)

    @classmethod
    def from_folder(
        cls,
        path: str | Path,
        provider: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
    ) -> Classifier:
        """Load a variant folder (model.onnx, config.json, tokenizer.json, export.json).

        Args:
            path: the variant folder, e.g. `RUN/onnx/int8-dynamic`.
            provider: `cpu`, `cuda` or a full ONNX Runtime execution provider name.
            threads: intra-op threads (None: ONNX Runtime's default).
            batch_size: texts per inference call; texts are grouped by token length.
            max_length: token limit (default: the run's fine-tuning max_length, else 512).

        Returns:
            A ready classifier. Raises EdgefnError when the folder is incomplete, its model.onnx no
            longer matches the hash in export.json, or the provider is unavailable.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise EdgefnError(f"model folder not found: {folder}")
        model = folder / runs.ONNX_FILE
        manifest = runs.verify_variant(folder) if (folder / runs.EXPORT_MANIFEST).is_file() else {}
        if not model.is_file():
            raise EdgefnError(f"{model} is missing: {_variant_hint(folder)}")
        config = _read_optional_json(folder / CONFIG_FILE)
        limit = resolve_max_length(folder, manifest, config, max_length)
        tokenizer, pad_id = _load_tokenizer(folder, limit)
        session = _create_session(model, resolve_provider(provider), threads)
        return cls(session, tokenizer, pad_id, _id2label(config), batch_size, limit, manifest)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session runs on."""
        return list(self.session.get_providers())

    @property
    def provider_note(self) -> str | None:
        """A note when the variant was exported for other execution providers than the one it runs on."""
        intended = self.manifest.get("execution_providers") or []
        if not intended or set(intended) & set(self.providers):
            return None
        name = self.manifest.get("variant", "this variant")
        return f"{name} is meant for {', '.join(intended)}; running on {self.providers[0]}"

    def _encode(self, texts: Sequence[str]) -> list[Any]:
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise EdgefnError(f"text {bad} is a {type(texts[bad]).__name__}, not a string")
        return list(self.tokenizer.encode_batch(list(texts)))

    def _feed(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        """Pad one batch to its longest member; int64 inputs, only those the graph declares."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = enc.attention_mask
            types[row, :n] = enc.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        missing = [n for n in self.input_names if n not in arrays]
        if missing:
            raise EdgefnError(f"model.onnx expects inputs this runtime does not build: {', '.join(missing)}")
        return {name: arrays[name] for name in self.input_names}

    def _logits(self, encodings: Sequence[Any]) -> np.ndarray:
        """Logits in input order, running length-sorted batches."""
        n_labels = len(self.id2label)
        out = np.zeros((len(encodings), n_labels), dtype=np.float32)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            (logits,) = self.session.run(["logits"], self._feed([encodings[i] for i in idx]))
            out[idx] = np.asarray(logits, dtype=np.float32)
        return out

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, shape (len(texts), num_labels), in input order."""
        return self._logits(self._encode(texts))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label, probability of fake, logits and truncation flag for each text, in input order."""
        encodings = self._encode(texts)
        logits = self._logits(encodings)
        probs = softmax(logits)
        label_ids = logits.argmax(axis=-1)
        return [
            Prediction(
                label=self.id2label.get(int(k), str(int(k))),
                label_id=int(k),
                prob_fake=float(probs[i, self.fake_id]),
                logits=tuple(float(v) for v in logits[i]),
                truncated=bool(encodings[i].overflowing),
            )
            for i, k in enumerate(label_ids)
        ]
