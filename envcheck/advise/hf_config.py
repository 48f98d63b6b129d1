"""Read a Hugging Face ``config.json`` into a TransformerShape: every shape field the families people train use.

Families (model_type): llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, gemma, gemma2, gemma3_text,
phi3, deepseek_v2, deepseek_v3, gpt_neox, falcon, gpt2, bert; a multimodal config (LLaVA) nests its language
model under ``text_config`` and its vision tower under ``vision_config``. Field names and defaults are
transformers' (the ``__init__`` defaults of each config class), since a saved config leaves out what equals them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.advise.architecture import TransformerShape
from envcheck.knowledge import KnowledgeError
from envcheck.validation import quoted

# Largest shape dimension accepted: 100x the largest published models' (hidden 18,432 and vocab 256,000 of
# Llama-3.1-405B and Gemma); beyond it a config is broken, and the arithmetic would leave float range.
MAX_DIMENSION = 100_000_000

# Families whose MLP has no gate (two matrices, GELU); every other family here is gated (SwiGLU / GeGLU).
UNGATED = frozenset({"gpt2", "gpt_neox", "falcon", "bert", "gptj", "opt", "phi", "starcoder2", "gpt_bigcode"})
# LayerNorm (weight and bias) rather than RMSNorm (weight only).
LAYER_NORM = UNGATED
# tie_word_embeddings when the config leaves it out: transformers' default of each config class.
TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3_text", "falcon", "gpt2", "bert", "gpt_bigcode"})
# Fields a nested text_config may leave out because they equal the config class's defaults (llava-hf's
# llava-1.5-7b-hf keeps only vocab_size): LlamaConfig and MistralConfig __init__ defaults.
FAMILY_DEFAULTS: dict[str, dict[str, int]] = {
    "llama": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
              "intermediate_size": 11008},
    "mistral": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
                "intermediate_size": 14336, "num_key_value_heads": 8},
}  # fmt: skip
# CLIPVisionConfig defaults (ViT-B/32), for a vision_config that leaves them out.
VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "patch_size": 32,
                   "image_size": 224, "num_channels": 3}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fields:
    """Typed access to one config object; errors name the file, the nesting and the field."""

    data: Mapping[str, Any]
    where: str
    defaults: Mapping[str, int]

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def count(self, *keys: str, default: int | None = None, allow_zero: bool = False) -> int:
        """The first of ``keys`` the config sets, as a positive (or with ``allow_zero``, non-negative) integer."""
        for key in keys:
            value = self.data.get(key, self.defaults.get(key))
            if value is None:
                continue
            lowest = 0 if allow_zero else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
                kind = "a non-negative" if allow_zero else "a positive"
                raise KnowledgeError(f"{self.where}: field {key!r}: expected {kind} integer, got {quoted(value)}")
            if value > MAX_DIMENSION:
                raise KnowledgeError(
                    f"{self.where}: field {key!r}: {quoted(value)} is too large (at most {MAX_DIMENSION:,})"
                )
            return value
        if default is not None:
            return default
        raise KnowledgeError(f"{self.where}: needs a positive integer {' or '.join(keys)}")

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise KnowledgeError(f"{self.where}: field {key!r}: expected true or false, got {quoted(value)}")
        return value


def _model_type(data: Mapping[str, Any]) -> str:
    value = data.get("model_type")
    return value if isinstance(value, str) else ""


def _experts(config: Fields, model_type: str, layers: int, intermediate: int) -> dict[str, Any]:
    """Mixture-of-experts fields: Mixtral (num_local_experts), Qwen2-MoE / Qwen3-MoE (num_experts, shared
    expert with a gate, decoder_sparse_step, mlp_only_layers), DeepSeek (n_routed_experts, n_shared_experts,
    first_k_dense_replace, moe_layer_freq)."""
    experts = config.count("num_local_experts", "n_routed_experts", "num_experts", default=0, allow_zero=True)
    if experts == 0:
        return {}
    first_dense = config.count("first_k_dense_replace", default=0, allow_zero=True)
    step = config.count("moe_layer_freq", "decoder_sparse_step", default=1)
    dense_only = config.data.get("mlp_only_layers") or []
    if not isinstance(dense_only, list):
        raise KnowledgeError(f"{config.where}: field 'mlp_only_layers': expected a list of layer numbers")
    if model_type.startswith("deepseek"):  # DeepseekV2DecoderLayer: i >= first_k_dense_replace and i % freq == 0
        moe_layers = sum(1 for i in range(layers) if i >= first_dense and i % step == 0)
    else:  # Qwen2MoeDecoderLayer: (i + 1) % decoder_sparse_step == 0 and i not in mlp_only_layers
        moe_layers = sum(1 for i in range(layers) if (i + 1) % step == 0 and i not in dense_only)
    width = config.count("moe_intermediate_size", default=intermediate)
    shared_count = config.count("n_shared_experts", default=0, allow_zero=True)
    shared = shared_count * width or config.count("shared_expert_intermediate_size", default=0, allow_zero=True)
    return {
        "experts": experts,
        "experts_per_token": min(config.count("num_experts_per_tok", default=2), experts),
        "expert_intermediate": width,
        "shared_intermediate": shared,
        "has_shared_expert_gate": model_type == "qwen2_moe" and shared > 0,
        "moe_layers": moe_layers,
    }


def _latent_attention(config: Fields) -> dict[str, Any]:
    """DeepSeek-V2/V3 multi-head latent attention; q_lora_rank is null when queries are not compressed."""
    if not config.has("kv_lora_rank"):
        return {}
    return {
        "kv_lora_rank": config.count("kv_lora_rank"),
        "q_lora_rank": config.count("q_lora_rank", default=0, allow_zero=True),
        "qk_rope_head_dim": config.count("qk_rope_head_dim"),
        "qk_nope_head_dim": config.count("qk_nope_head_dim"),
        "v_head_dim": config.count("v_head_dim"),
    }


def _kv_heads(config: Fields, model_type: str, heads: int) -> int:
    if model_type == "falcon":  # FalconAttention: num_kv_heads with the new architecture, else multi_query -> 1
        if config.flag("new_decoder_architecture", False):
            return config.count("num_kv_heads", default=heads)
        return 1 if config.flag("multi_query", True) else heads
    return config.count("num_key_value_heads", "multi_query_group_num", default=heads)


def _norms_per_layer(config: Fields, model_type: str) -> int:
    if model_type.startswith("gemma") and model_type != "gemma":
        return 4  # Gemma-2/3: norms before and after attention and the MLP
    if model_type == "falcon":  # parallel attention shares one input LayerNorm unless new_decoder_architecture
        return 2 if config.flag("new_decoder_architecture", False) or not config.flag("parallel_attn", True) else 1
    return 2


def shape_from_fields(config: Fields, other_parameters: int = 0) -> TransformerShape:
    """The language model's shape from one config object (the top level, or a multimodal text_config)."""
    model_type = _model_type(config.data)
    hidden = config.count("hidden_size", "n_embd", "d_model")
    heads = config.count("num_attention_heads", "n_head")
    layers = config.count("num_hidden_layers", "n_layer", "num_layers")
    intermediate = config.count("intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim", default=4 * hidden)
    gated = False if model_type in UNGATED else (True if model_type else None)
    if model_type in ("gpt_neox", "gpt2", "bert"):
        qkv_bias = dense_bias = True
    elif model_type == "falcon":
        qkv_bias = dense_bias = config.flag("bias", False)
    else:
        qkv_bias = model_type.startswith("qwen2") or config.flag("attention_bias", False)
        dense_bias = config.flag("mlp_bias", False)
    positions = 0
    if model_type == "gpt2":
        positions = config.count("n_positions", default=1024)
    elif model_type == "bert":
        positions = config.count("max_position_embeddings", default=512)
    return TransformerShape(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=_kv_heads(config, model_type, heads),
        vocab=config.count("vocab_size"),
        intermediate=intermediate,
        explicit_head_dim=config.count("head_dim", default=0, allow_zero=True),
        gated_mlp=gated,
        is_tied_embeddings=config.flag("tie_word_embeddings", model_type in TIED_BY_DEFAULT),
        norms_per_layer=_norms_per_layer(config, model_type),
        has_norm_bias=model_type in LAYER_NORM,
        has_qkv_bias=qkv_bias,
        has_dense_bias=dense_bias,
        learned_positions=positions,
        other_parameters=other_parameters,
        **_experts(config, model_type, layers, intermediate),
        **_latent_attention(config),
    )


def vision_parameters(vision: Fields, text_hidden: int, projector_bias: bool = True) -> int:
    """A CLIP/SigLIP-style vision tower and LLaVA's two-layer projector to the language model's width.

    ViT (Dosovitskiy et al. 2020) as transformers' CLIPVisionModel builds it: patch convolution, class token and
    learned positions, pre- and post-LayerNorm, layers of attention (4 biased h x h) and a biased GELU MLP.
    """
    h, width = vision.count("hidden_size"), vision.count("intermediate_size")
    patch, image = vision.count("patch_size"), vision.count("image_size")
    if patch > image:
        raise KnowledgeError(f"{vision.where}: patch_size {patch} is larger than image_size {image}")
    patches = (image // patch) ** 2
    embeddings = vision.count("num_channels") * patch * patch * h + h + (patches + 1) * h + 2 * h
    layer = 4 * (h * h + h) + (h * width + width) + (width * h + h) + 2 * 2 * h
    tower = embeddings + vision.count("num_hidden_layers") * layer + 2 * h
    bias = text_hidden if projector_bias else 0
    projector = (h * text_hidden + bias) + (text_hidden * text_hidden + bias)
    return tower + projector


def shape_from_config(data: Any, path: Path) -> TransformerShape:
    """The shape of the model a parsed ``config.json`` describes (nested ``text_config`` included)."""
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: expected a JSON object")
    text = data.get("text_config")
    if text is None:
        return shape_from_fields(Fields(data, str(path), {}))
    if not isinstance(text, dict):
        raise KnowledgeError(f"{path}: field 'text_config': expected a JSON object, got {quoted(text)}")
    text_fields = Fields(text, f"{path}: text_config", FAMILY_DEFAULTS.get(_model_type(text) or "llama", {}))
    other = 0
    vision = data.get("vision_config")
    if vision is not None:
        if not isinstance(vision, dict):
            raise KnowledgeError(f"{path}: field 'vision_config': expected a JSON object, got {quoted(vision)}")
        text_hidden = text_fields.count("hidden_size")
        projector_bias = Fields(data, str(path), {}).flag("multimodal_projector_bias", True)
        other = vision_parameters(
            Fields(vision, f"{path}: vision_config", VISION_DEFAULTS), text_hidden, projector_bias
        )
    return shape_from_fields(text_fields, other)
