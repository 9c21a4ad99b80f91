"""The PyTorch engines (torch-cpu, torch-cuda): the fine-tuned checkpoint (the reference), `pytorch-int8`."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgefn import runs
from edgefn.core.errors import EdgefnError
from edgefn.core.presets import count_parameters
from edgefn.runtime import engines
from edgefn.runtime.classifier import Classifier, id2label_of
from edgefn.runtime.engines import Engine, LoadRequest, Peer
from edgefn.runtime.inference import MODEL_INPUTS, Encoder, pad_id_of

RUNTIME = "pytorch"
WEIGHTS = ("*.safetensors", "pytorch_model*.bin")  # a checkpoint's weight files (sharded ones too)
OMP_WAIT = "OMP_WAIT_POLICY"  # how torch's OpenMP threads wait for work: spinning (default, briefly) or not


class TorchRunner:
    """Runs padded numpy batches through a PyTorch sequence-classification model (inference mode)."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device
        accepted = inspect.signature(model.forward).parameters
        self.input_names = [n for n in MODEL_INPUTS if n in accepted]

    @property
    def providers(self) -> list[str]:
        return [f"torch-{self.device}"]

    @property
    def parameters(self) -> int:
        """The model's parameter count."""
        return count_parameters(self.model)

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            inputs = {k: torch.from_numpy(feed[k]).to(self.device) for k in self.input_names}
            return np.asarray(self.model(**inputs).logits.float().cpu().numpy(), dtype=np.float32)


def checkpoint_encoder(checkpoint: Path, max_length: int) -> Encoder:
    """The checkpoint's fast tokenizer as an Encoder; a checkpoint with only slow-tokenizer files (vocab.txt,
    spiece.model) is converted by transformers first."""
    checkpoint = Path(checkpoint)
    if (checkpoint / runs.TOKENIZER_FILE).is_file():
        return Encoder.from_folder(checkpoint, max_length)
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True, use_fast=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many types for unreadable tokenizer files
        raise EdgefnError(f"cannot load the tokenizer of {checkpoint}: {str(e).splitlines()[0]}") from None
    if not getattr(tok, "is_fast", False):
        raise EdgefnError(f"{checkpoint} has no fast tokenizer (tokenizer.json) and none could be converted")
    backend = tok.backend_tokenizer
    return Encoder(backend, pad_id_of(backend, checkpoint), max_length)


def load_checkpoint_model(checkpoint: Path, device: str = "cpu") -> Any:
    """The fine-tuned sequence-classification model of a checkpoint folder, in eval mode on `device`."""
    from transformers import AutoModelForSequenceClassification

    check_weights(checkpoint)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - safetensors, pickle, torch and transformers each raise their own
        raise EdgefnError(f"cannot load the model of {checkpoint}: {load_error(e)}") from None
    return model.eval().to(device)


def check_weights(checkpoint: Path) -> None:
    """Refuse in one line, before any model is built, a weight file that does not load: a truncated
    safetensors file, or a pickle that is no PyTorch state dict (another framework's, or random bytes)."""
    import warnings

    checkpoint = Path(checkpoint)
    safetensors, pickled = checkpoint / runs.SAFETENSORS_WEIGHTS, checkpoint / runs.PICKLE_WEIGHTS
    try:
        if safetensors.is_file():
            from safetensors import safe_open

            with safe_open(str(safetensors), "pt") as f:
                f.keys()
        elif pickled.is_file():
            import torch

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # what a foreign pickle's classes say while refused
                state = torch.load(pickled, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise TypeError("not a dict of tensors")
    except Exception as e:  # noqa: BLE001 - safetensors and torch raise their own types for broken files
        path = safetensors if safetensors.is_file() else pickled
        why = load_error(e) if safetensors.is_file() else f"{type(e).__name__}: not a PyTorch state dict"
        raise EdgefnError(f"cannot load {path} ({why}): it is truncated, or no PyTorch checkpoint") from None


def load_error(e: BaseException) -> str:
    """A load failure in one line: its type and the first line of its message."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else 'no message'}"[:300]


def load_reference(
    checkpoint: Path,
    device: str = "cpu",
    threads: int | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    dynamic_int8: bool = False,
) -> Classifier:
    """The fine-tuned PyTorch checkpoint as a Classifier (fp32, eval mode).

    Args:
        checkpoint: a `save_pretrained` folder (RUN/checkpoint).
        device: "cpu" or "cuda".
        threads: torch intra-op threads (None: leave torch's setting).
        batch_size: texts per forward pass.
        max_length: token limit (default: the run's fine-tuning max_length, else the model's positions).
        dynamic_int8: PyTorch's own dynamic int8 of every Linear layer (CPU): the `pytorch-int8` peer.
    """
    checkpoint = Path(checkpoint)
    runner = _torch_runner(checkpoint, device, threads, dynamic_int8)
    positions = int(getattr(runner.model.config, "max_position_embeddings", 512) or 512)
    limit = max_length or runs.RunFolder(checkpoint.parent).max_length(positions)
    config = runs.read_optional_json(checkpoint / runs.MODEL_CONFIG)
    encoder = checkpoint_encoder(checkpoint, min(limit, positions))
    id2label = id2label_of(config, str(checkpoint / runs.MODEL_CONFIG))
    return Classifier(runner, encoder, id2label, batch_size)


def _torch_runner(checkpoint: Path, device: str, threads: int | None, dynamic_int8: bool) -> TorchRunner:
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = load_checkpoint_model(checkpoint, device)
    return TorchRunner(quantize_dynamic_int8(model) if dynamic_int8 else model, device)


def quantize_dynamic_int8(model: Any) -> Any:
    """`torch.ao.quantization.quantize_dynamic` on the Linear layers: int8 weights, activations quantized
    per call (what a PyTorch user tries first; torchao's replacement is not installed here)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice for torchao
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _loader(device: str) -> Any:
    def load(request: LoadRequest) -> TorchRunner:
        if request.options.get(engines.SPIN) is False and "torch" not in sys.modules:
            os.environ[OMP_WAIT] = "PASSIVE"  # read once, when torch's OpenMP library loads
        return _torch_runner(
            request.model, device, request.threads, bool(request.options.get("dynamic_int8"))
        )

    return load


def threading(request: LoadRequest) -> dict[str, Any]:
    """torch's intra-op threads and its OpenMP wait policy (spinning: libgomp's default spins briefly, PASSIVE
    sleeps at once); OpenMP pins no thread unless told to."""
    return {
        "torch.set_num_threads": request.threads or "default (physical cores)",
        OMP_WAIT: os.environ.get(OMP_WAIT)
        or ("PASSIVE" if request.options.get(engines.SPIN) is False else "default (spins briefly)"),
        "thread pinning": "none",
    }


def _cuda_unavailable() -> str | None:
    return None if engines.cuda_device_present() else "torch.cuda is not available"


PYTORCH_INT8 = Peer(
    "pytorch-int8",
    "PyTorch dynamic int8 of the Linear layers (torch.ao.quantization.quantize_dynamic)",
    "torch-cpu",
    "int8",
    options={"dynamic_int8": True},
)


def _engine(device: str, **extra: Any) -> Engine:
    return Engine(
        name=f"torch-{device}",
        device=device,
        runtime=RUNTIME,
        module=__name__,
        load=_loader(device),
        extra_files=WEIGHTS,
        versions=("torch",),
        encoder=checkpoint_encoder,
        threading=threading,
        **extra,
    )


engines.register(_engine("cpu", peers=(PYTORCH_INT8,)))
engines.register(_engine("cuda", available=_cuda_unavailable))
