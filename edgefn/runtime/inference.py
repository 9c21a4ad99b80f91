"""The one inference path (torch-free): providers, ONNX Runtime sessions, tokenising and length-sorted batches.

`runtime.Classifier` is built on it; export's parity and scoring, bench's accuracy and both latency modes,
and `edgefn predict` all run models through it. Every engine (`runtime.engines`) plugs its runner into the same
`Encoder` and batching.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.errors import EdgefnError

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
PROVIDER_ALIASES = {
    "cpu": CPU,
    "cuda": CUDA,
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# What runs one padded batch: numpy feed in, float32 logits (batch, num_labels) out.
Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = np.asarray(logits).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# --- providers and sessions ---------------------------------------------------------------------------------


def provider_name(name: str) -> str:
    """`cpu` / `cuda` / ... or a full ONNX Runtime provider name; unknown names raise with the known ones."""
    name = name.strip()
    if name.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[name.lower()]
    if name.endswith("ExecutionProvider"):
        return name
    raise EdgefnError(
        f"unknown provider {name!r}; use {', '.join(PROVIDER_ALIASES)} or a full ONNX Runtime provider name"
    )


def available_providers() -> list[str]:
    """The execution providers of the installed onnxruntime build."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_provider(provider: str) -> str:
    """The full name of a provider this onnxruntime build has, or a one-line error listing those it has."""
    name = PROVIDER_ALIASES.get(provider.lower(), provider)
    available = available_providers()
    if name not in available:
        raise EdgefnError(
            f"execution provider {name} is not available in this onnxruntime build; "
            f"available: {', '.join(available)}"
            + (" (install onnxruntime-gpu for CUDA)" if name == CUDA else "")
        )
    return name


SPIN_CONFIG = "session.intra_op.allow_spinning"  # ONNX Runtime's session config key of intra-op spinning


def create_session(
    model: Path | str,
    provider: str = CPU,
    threads: int | None = None,
    profile: bool = False,
    spin: bool | None = None,
) -> Any:
    """An ONNX Runtime session on `provider` (CPU behind any other, for the nodes it lacks).

    Args:
        model: the .onnx file.
        provider: a full provider name (see `resolve_provider`).
        threads: intra-op threads (None: ONNX Runtime's default); inter-op threads are then 1.
        profile: record a profile of every node (`session.end_profiling()` returns its file).
        spin: whether idle intra-op threads spin between parallel sections (None: ONNX Runtime's default, on).

    Raises EdgefnError when the file does not load or the provider could not be initialised (ONNX Runtime
    would otherwise fall back to CPU without a word).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.enable_profiling = profile
    if spin is not None:
        opts.add_session_config_entry(SPIN_CONFIG, "1" if spin else "0")
    # ORT's memory pattern plans one block per input shape; length-sorted batches bring a new shape per batch,
    # and the blocks fragment its arena: predict's peak RSS rose to 383-395 MB over 100k tweets (int8 minilm,
    # batch 32) against 264 MB without it, too close to 400 MB for 1M lines; its throughput gain did not hold
    # (benchmarks/results/predict-stream-mem-pattern.md). Bench latency without it is within 3% (6 interleaved
    # rounds on 2 cores: fixed 128 tokens at batch 1 and 8 0.99x and 0.97x, real lengths 1.00x, 1,024 texts 1.02x).
    opts.enable_mem_pattern = False
    providers = [provider] if provider == CPU else [provider, CPU]
    try:
        session = ort.InferenceSession(str(model), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for broken files
        raise EdgefnError(f"onnxruntime cannot load {model}: {str(e).splitlines()[0]}") from None
    if provider not in session.get_providers():  # e.g. CUDA libraries missing
        raise EdgefnError(
            f"{provider} could not be initialised (session runs on {', '.join(session.get_providers())}); "
            "check the CUDA / cuDNN installation"
        )
    return session


class OrtRunner:
    """Runs padded batches through an ONNX Runtime session, feeding only the inputs its graph declares."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        missing = [n for n in self.input_names if n not in MODEL_INPUTS]
        if missing:
            raise EdgefnError(f"model.onnx expects inputs this runtime does not build: {', '.join(missing)}")

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        (logits,) = self.session.run(["logits"], {k: feed[k] for k in self.input_names})
        return np.asarray(logits, dtype=np.float32)


# --- tokenising and batching --------------------------------------------------------------------------------


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices sorted by token length (stable), cut into batches: padding stays short."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_id_of(tokenizer: Any, folder: Path) -> int:
    """The padding id: the tokenizer's own padding, else tokenizer_config's pad_token, else config's
    pad_token_id, else 0."""
    pad_id = (tokenizer.padding or {}).get("pad_id")
    if pad_id is None:
        pad_token = runs.read_optional_json(folder / runs.TOKENIZER_CONFIG).get("pad_token")
        if isinstance(pad_token, dict):
            pad_token = pad_token.get("content")
        pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    if pad_id is None:
        pad_id = runs.read_optional_json(folder / runs.MODEL_CONFIG).get("pad_token_id")
    return int(pad_id or 0)


# Characters kept per token of max_length before tokenizing: a text is cut (at a space) to max_length * 64
# characters, so a 10 MB text is not tokenized whole to keep 128 tokens. English WordPiece tokens average
# 4-5 characters and a URL or a number 2-3, so 64 leaves a text that fills max_length untouched unless it is
# mostly spaces or words longer than 64 characters; a cut text is flagged truncated whatever its token count.
CHARS_PER_TOKEN = 64
SURROGATE = re.compile("[\ud800-\udfff]")


def cut_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at the last space, tab or newline of the kept part (a word cut
    in two would tokenize differently), or at `limit` itself when there is none in its second half."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = max(head.rfind(c) for c in " \t\n\r")
    return head[:space] if space >= limit // 2 else head


ENCODE_SLICE = 1024  # texts tokenized at a time by `encode_compact`


@dataclass(frozen=True)
class Tokens:
    """One text's tokens as compact arrays (what `Encoder.feed` reads), and whether the text lost tokens."""

    ids: np.ndarray
    attention_mask: np.ndarray
    type_ids: np.ndarray
    truncated: bool


class Encoder:
    """A fast tokenizer (the `tokenizers` library, no torch) that truncates, and pads per batch."""

    def __init__(self, tokenizer: Any, pad_id: int, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.max_length = max_length
        tokenizer.no_padding()  # padding is done per length-sorted batch
        tokenizer.enable_truncation(max_length)

    @classmethod
    def from_folder(cls, folder: Path, max_length: int) -> Encoder:
        """The tokenizer.json of a variant folder or checkpoint."""
        from tokenizers import Tokenizer

        path = Path(folder) / runs.TOKENIZER_FILE
        if not path.is_file():
            raise EdgefnError(f"{path} is missing: the folder needs the fast tokenizer file")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises plain Exceptions for bad files
            raise EdgefnError(f"{path} cannot be read: {str(e).splitlines()[0]}") from None
        return cls(tokenizer, pad_id_of(tokenizer, Path(folder)), max_length)

    @property
    def char_limit(self) -> int:
        """Characters of a text that are tokenized: CHARS_PER_TOKEN for each token of the current limit."""
        return int((self.tokenizer.truncation or {}).get("max_length", self.max_length)) * CHARS_PER_TOKEN

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """Encodings (ids, mask, type ids, overflow) truncated at max_length, unpadded; each text is first cut
        to `char_limit` characters (see `truncated`)."""
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise EdgefnError(f"text {bad} is a {type(texts[bad]).__name__}, not a string")
        limit = self.char_limit
        cut = [cut_text(t, limit) for t in texts]
        bad = next((i for i, t in enumerate(cut) if SURROGATE.search(t)), None)
        if bad is not None:
            raise EdgefnError(f"text {bad} holds an unpaired surrogate (bytes that were not valid text)")
        return list(self.tokenizer.encode_batch(cut))

    def truncated(self, texts: Sequence[str], encodings: Sequence[Any]) -> list[bool]:
        """Whether each text lost tokens: cut to `char_limit` characters, or truncated at max_length."""
        limit = self.char_limit
        return [len(t) > limit or bool(e.overflowing) for t, e in zip(texts, encodings, strict=True)]

    def encode_compact(self, texts: Sequence[str]) -> list[Tokens]:
        """`encode`, ENCODE_SLICE texts at a time, each text kept as `Tokens`: about 0.5 KB a text of 50 tokens
        where the tokenizer's Encoding objects hold about 9 KB, so thousands of texts can be sorted by length
        together in little memory."""
        out: list[Tokens] = []
        for start in range(0, len(texts), ENCODE_SLICE):
            part = texts[start : start + ENCODE_SLICE]
            encodings = self.encode(part)
            out += [
                Tokens(
                    np.asarray(e.ids, dtype=np.int32),
                    np.asarray(e.attention_mask, dtype=np.int8),
                    np.asarray(e.type_ids, dtype=np.int8),
                    cut,
                )
                for e, cut in zip(encodings, self.truncated(part, encodings), strict=True)
            ]
        return out

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token counts after truncation."""
        return [len(e.ids) for e in self.encode(texts)]

    def feed(self, encodings: Sequence[Any], width: int | None = None) -> dict[str, np.ndarray]:
        """int64 input_ids / attention_mask / token_type_ids, padded to `width` (default: the longest)."""
        width = width or max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = min(len(enc.ids), width)
            ids[row, :n] = enc.ids[:n]
            mask[row, :n] = enc.attention_mask[:n]
            types[row, :n] = enc.type_ids[:n]
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def fixed_feed(self, texts: Sequence[str], seq_len: int) -> dict[str, np.ndarray]:
        """Every text truncated and padded to exactly `seq_len` tokens (fixed-shape measurements)."""
        self.tokenizer.enable_truncation(seq_len)
        try:
            return self.feed(self.encode(texts), width=seq_len)
        finally:
            self.tokenizer.enable_truncation(self.max_length)


def batched_logits(
    run: Runner, encoder: Encoder, encodings: Sequence[Any], batch_size: int, num_labels: int
) -> np.ndarray:
    """Logits in input order, running length-sorted batches each padded to its longest member."""
    out = np.zeros((len(encodings), num_labels), dtype=np.float32)
    lengths = [len(e.ids) for e in encodings]
    for idx in length_sorted_batches(lengths, batch_size):
        out[idx] = run(encoder.feed([encodings[i] for i in idx]))
    return out
