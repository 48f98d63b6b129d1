"""A transformer's shape as its Hugging Face config.json describes it, and what follows from the shape alone:
parameters (total, and active per token for mixtures of experts), LoRA adapter sizes and the KV cache per token.

Field names are transformers' own (LlamaConfig, MixtralConfig, DeepseekV2Config, ...); docs/recommend.md#models.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TransformerShape:
    """A decoder (or encoder) stack; ``kv_heads < heads`` is grouped-query attention (Llama-2-70B: 64 / 8).

    The fields after ``intermediate`` default to a Llama-style dense model, so ``TransformerShape(32, 4096, 32,
    32, 32000, 11008)`` is Llama-2-7B.
    """

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    intermediate: int  # MLP width; 4 x hidden for GPT-2/BERT, ~2.7 x hidden (SwiGLU, 3 matrices) for Llama
    explicit_head_dim: int = 0  # config head_dim (Gemma: 256, not 3072 / 16 = 192); 0: hidden / heads
    gated_mlp: bool | None = None  # gate, up and down matrices (SwiGLU, GeGLU); None: intermediate != 4 x hidden
    is_tied_embeddings: bool = False  # lm_head shares the input embedding (Gemma, Falcon, GPT-2)
    norms_per_layer: int = 2  # Falcon-7B (parallel attention): 1; Gemma-2: 4
    has_norm_bias: bool = False  # LayerNorm (GPT-NeoX, Falcon, GPT-2) rather than RMSNorm
    has_qkv_bias: bool = False  # Qwen2, GPT-NeoX, GPT-2
    has_dense_bias: bool = False  # the attention output and MLP matrices (GPT-NeoX, GPT-2)
    learned_positions: int = 0  # rows of a learned position embedding (GPT-2, BERT); 0: rotary or ALiBi
    # mixture of experts: ``moe_layers`` of the ``layers`` route each token to ``experts_per_token`` of
    # ``experts`` MLPs ``expert_intermediate`` wide, plus always-on shared experts ``shared_intermediate`` wide
    experts: int = 0
    experts_per_token: int = 0
    expert_intermediate: int = 0
    shared_intermediate: int = 0
    has_shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate Linear(hidden, 1) on the shared expert
    moe_layers: int = 0
    # multi-head latent attention (DeepSeek-V2/V3): keys and values go through a kv_lora_rank bottleneck
    kv_lora_rank: int = 0
    q_lora_rank: int = 0  # 0: queries are projected directly (DeepSeek-V2-Lite)
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    other_parameters: int = 0  # outside the language model: a vision tower and its projector (LLaVA)

    @property
    def head_dim(self) -> int:
        return self.explicit_head_dim or self.hidden // self.heads

    @property
    def is_gated_mlp(self) -> bool:
        # a SwiGLU MLP has three matrices (gate, up, down); its intermediate is usually not 4 x hidden
        return self.gated_mlp if self.gated_mlp is not None else self.intermediate != 4 * self.hidden

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        return self.experts > 0 and self.moe_layers > 0


@dataclass(frozen=True, slots=True)
class Linear:
    """One kind of matrix: ``copies`` of it in the model, ``active_copies`` of them used for each token."""

    fan_in: int
    fan_out: int
    copies: int
    active_copies: float
    has_bias: bool = False
    is_block: bool = True  # inside the transformer blocks (quantised and adapted); False: lm_head
    is_router: bool = False

    @property
    def parameters(self) -> int:
        return self.fan_in * self.fan_out + (self.fan_out if self.has_bias else 0)


def _mlp(fan_in: int, width: int, copies: int, active: float, *, gated: bool, bias: bool) -> list[Linear]:
    inputs = [Linear(fan_in, width, copies, active, bias)] * (2 if gated else 1)
    return [*inputs, Linear(width, fan_in, copies, active, bias)]


def _attention(shape: TransformerShape) -> list[Linear]:
    h, n = shape.hidden, shape.layers
    if shape.is_mla:
        # DeepSeek-V2 (arXiv 2405.04434) sec. 2.1.2-2.1.3: queries (optionally through a q_lora_rank
        # bottleneck), one down-projection to the latent plus the shared rotary key, one up-projection to
        # per-head keys and values, the output projection
        qk = shape.qk_nope_head_dim + shape.qk_rope_head_dim
        if shape.q_lora_rank:
            queries = [Linear(h, shape.q_lora_rank, n, n), Linear(shape.q_lora_rank, shape.heads * qk, n, n)]
        else:
            queries = [Linear(h, shape.heads * qk, n, n)]
        latent = shape.kv_lora_rank
        return [
            *queries,
            Linear(h, latent + shape.qk_rope_head_dim, n, n),
            Linear(latent, shape.heads * (shape.qk_nope_head_dim + shape.v_head_dim), n, n),
            Linear(shape.heads * shape.v_head_dim, h, n, n),
        ]
    q, kv, bias = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.has_qkv_bias
    return [
        Linear(h, q, n, n, bias),
        Linear(h, kv, n, n, bias),
        Linear(h, kv, n, n, bias),
        Linear(q, h, n, n, shape.has_dense_bias),
    ]


def linears(shape: TransformerShape) -> list[Linear]:
    """Every matrix of the model: attention, dense and expert MLPs, routers, shared experts, lm_head."""
    h, gated, bias = shape.hidden, shape.is_gated_mlp, shape.has_dense_bias
    moe = shape.moe_layers if shape.is_moe else 0
    dense = shape.layers - moe
    found = _attention(shape)
    found += _mlp(h, shape.intermediate, dense, dense, gated=gated, bias=bias) if dense else []
    if moe:
        width = shape.expert_intermediate or shape.intermediate
        copies, active = moe * shape.experts, moe * min(shape.experts_per_token or 1, shape.experts)
        found += _mlp(h, width, copies, active, gated=gated, bias=bias)
        found.append(Linear(h, shape.experts, moe, moe, is_router=True))
        if shape.shared_intermediate:
            found += _mlp(h, shape.shared_intermediate, moe, moe, gated=gated, bias=bias)
        if shape.has_shared_expert_gate:
            found.append(Linear(h, 1, moe, moe, is_router=True))
    if not shape.is_tied_embeddings:
        found.append(Linear(h, shape.vocab, 1, 1, is_block=False))
    return found


def unquantised_parameters(shape: TransformerShape) -> int:
    """Everything that is not a matrix of a block: embeddings, lm_head, norms, biases, routers, vision tower.

    bitsandbytes (QLoRA) and GPTQ/AWQ quantise the blocks' nn.Linear weights only; the rest stays 16-bit.
    """
    return transformer_parameters(shape) - sum(
        m.fan_in * m.fan_out * m.copies for m in linears(shape) if m.is_block and not m.is_router
    )


def embedding_parameters(shape: TransformerShape) -> int:
    """The token (and learned position) embeddings; with tied embeddings lm_head is this same matrix."""
    return (shape.vocab + shape.learned_positions) * shape.hidden


def lm_head_parameters(shape: TransformerShape) -> int:
    """The output projection's own weights: 0 when it is tied to the input embedding."""
    return 0 if shape.is_tied_embeddings else shape.hidden * shape.vocab


def _outside_linears(shape: TransformerShape) -> int:
    """Embeddings and norms: every token uses all of them."""
    norm = 2 if shape.has_norm_bias else 1
    per_layer_norms = shape.norms_per_layer * shape.hidden + shape.kv_lora_rank + shape.q_lora_rank
    return embedding_parameters(shape) + norm * (shape.layers * per_layer_norms + shape.hidden) + shape.other_parameters


def transformer_parameters(shape: TransformerShape) -> int:
    """All weights: what memory holds. Llama-2-7B's shape gives 6,738,415,616, its published count (tested)."""
    return _outside_linears(shape) + sum(m.parameters * m.copies for m in linears(shape))


def active_parameters(shape: TransformerShape) -> int:
    """Weights one token passes through: the total less the experts it is not routed to (Mixtral-8x7B: 12.9 B
    of 46.7 B). Compute scales with this count; embeddings are counted, as Mistral's and Qwen's figures do."""
    return _outside_linears(shape) + round(sum(m.parameters * m.active_copies for m in linears(shape)))


def lora_parameters(shape: TransformerShape, rank: int) -> int:
    """Adapters of rank r on every linear layer of the blocks (QLoRA's recipe; peft "all-linear" without the
    routers), r x (in + out) each, every expert included."""
    return rank * sum((m.fan_in + m.fan_out) * m.copies for m in linears(shape) if m.is_block and not m.is_router)


def kv_cache_bytes_per_token(shape: TransformerShape, element_bytes: int = 2) -> int:
    """What one token leaves in the KV cache over all layers: K and V of every KV head (GQA shares them), or for
    MLA the latent and the shared rotary key (kv_lora_rank + qk_rope_head_dim, DeepSeek-V2 sec. 2.1.2)."""
    if shape.is_mla:
        return shape.layers * (shape.kv_lora_rank + shape.qk_rope_head_dim) * element_bytes
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * element_bytes
