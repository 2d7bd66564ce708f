"""The conditional model ``R(x+ | x)`` of GenRe: a small encoder-decoder transformer.

Encoder tokens ``[y~, u_1 .. u_T]`` (the factual, ``y~ = 2y - 1``), decoder tokens
``[y~+, u+_1 .. u+_{T-1}]`` (the recourse so far, shifted right); the decoder output at position
``t`` gives the logits of unit ``u+_{t+1}``. A unit is one feature or one whole one-hot group
(see :mod:`.layout`).

* **Embedding**: each position ``p`` has its own two-layer network ``Linear(k_max, m), ReLU,
  Linear(m, m)`` applied to the token's padded input vector, shared by encoder and decoder, plus a
  learned positional embedding (also shared). For a one-column unit this is the authors'
  ``Linear(1, m), ReLU, Linear(m, m)`` (the padding entries are 0); for a one-hot group the first
  layer maps the level's one-hot vector to a learned vector per level, i.e. it embeds the level
  index.
* **Blocks**: pre-layer-norm transformer blocks (self-attention, causal in the decoder;
  cross-attention to the encoder output; a ReLU feed-forward layer), final layer norms. Our own
  small blocks rather than ``torch.nn.Transformer``, so that sampling can cache every layer's keys
  and values and decode one token per step.
* **Heads**: one linear head per unit, giving ``n_bins`` logits for a binned unit or one logit per
  level for a categorical unit (padded to a common width; absent classes are masked).
* **Randomness**: parameters are initialised from an explicit ``torch.Generator`` (Xavier
  uniform for matrices, as the authors, zeros for biases) and dropout draws its masks from the
  generator passed to :meth:`GenReTransformer.forward`, so no global random state is used or
  changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...models._torch import untouched_global_rng

MASKED_LOGIT = -1e4  # logit of a class a unit's head does not have (finite: 0 * it stays 0)


def dropout(
    x: torch.Tensor, p: float, generator: torch.Generator | None, training: bool
) -> torch.Tensor:
    """Inverted dropout whose mask comes from ``generator`` (identity when not training)."""
    if not training or p <= 0 or generator is None:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)


class Attention(nn.Module):
    """Multi-head attention (queries from ``x``, keys and values from a context)."""

    def __init__(self, width: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        return x.reshape(n, length, self.n_heads, width // self.n_heads).transpose(1, 2)

    def keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``context`` (n, L, m), each (n, heads, L, m / heads)."""
        k, v = self.key_value(context).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False
    ) -> torch.Tensor:
        """Attention of the queries of ``x`` (n, L, m) over keys ``k`` and values ``v``."""
        q = self._heads(self.query(x))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out(o.transpose(1, 2).reshape(x.shape))

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        """Self-attention (``context`` None) or attention over ``context``."""
        k, v = self.keys_values(x if context is None else context)
        return self.attend(x, k, v, causal)


class FeedForward(nn.Module):
    """``Linear(m, f), ReLU, Linear(f, m)``."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.inner = nn.Linear(width, hidden)
        self.outer = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer."""
        return self.outer(F.relu(self.inner(x)))


class EncoderLayer(nn.Module):
    """Pre-norm block: self-attention and feed-forward, each with a residual connection."""

    def __init__(self, width: int, n_heads: int, hidden: int, p: float):
        super().__init__()
        self.p = p
        self.norm_attn, self.norm_ffn = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, n_heads)
        self.ffn = FeedForward(width, hidden)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Apply the block."""
        x = x + dropout(self.attn(self.norm_attn(x)), self.p, generator, self.training)
        return x + dropout(self.ffn(self.norm_ffn(x)), self.p, generator, self.training)


class DecoderLayer(nn.Module):
    """Pre-norm block: causal self-attention, cross-attention and feed-forward."""

    def __init__(self, width: int, n_heads: int, hidden: int, p: float):
        super().__init__()
        self.p = p
        self.norm_self = nn.LayerNorm(width)
        self.norm_cross = nn.LayerNorm(width)
        self.norm_ffn = nn.LayerNorm(width)
        self.self_attn = Attention(width, n_heads)
        self.cross_attn = Attention(width, n_heads)
        self.ffn = FeedForward(width, hidden)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Apply the block to a whole (teacher-forced) sequence."""
        drop = self.p, generator, self.training
        x = x + dropout(self.self_attn(self.norm_self(x), causal=True), *drop)
        x = x + dropout(self.cross_attn(self.norm_cross(x), memory), *drop)
        return x + dropout(self.ffn(self.norm_ffn(x)), *drop)

    def step(self, x: torch.Tensor, t: int, cache: LayerCache) -> torch.Tensor:
        """Apply the block to the token at position ``t`` (n, 1, m), caching its keys/values."""
        h = self.norm_self(x)
        k, v = self.self_attn.keys_values(h)
        cache.keys[:, :, t : t + 1] = k
        cache.values[:, :, t : t + 1] = v
        x = x + self.self_attn.attend(h, cache.keys[:, :, : t + 1], cache.values[:, :, : t + 1])
        x = x + self.cross_attn.attend(self.norm_cross(x), cache.memory_keys, cache.memory_values)
        return x + self.ffn(self.norm_ffn(x))


@dataclass
class LayerCache:
    """Keys and values of one decoder layer during incremental decoding."""

    keys: torch.Tensor
    values: torch.Tensor
    memory_keys: torch.Tensor
    memory_values: torch.Tensor


class GenReTransformer(nn.Module):
    """Encoder-decoder transformer over units, with per-unit output heads.

    Parameters
    ----------
    n_units : int
        Units ``T`` of a row (the sequence has ``T + 1`` positions with the label).
    k_max : int
        Width of a token's input vector.
    class_mask : tensor of bool (T, n_out)
        Which classes each unit's head has.
    width, n_heads, n_encoder_layers, n_decoder_layers, ffn_width : int
        Transformer sizes (``width`` must be a multiple of ``n_heads``).
    dropout : float
        Dropout on embeddings and on every residual branch (training only).
    generator : torch.Generator
        Draws the initial parameters.
    """

    def __init__(
        self,
        n_units: int,
        k_max: int,
        class_mask: torch.Tensor,
        *,
        width: int,
        n_heads: int,
        n_encoder_layers: int,
        n_decoder_layers: int,
        ffn_width: int,
        dropout: float,
        generator: torch.Generator,
    ):
        super().__init__()
        positions, m = n_units + 1, width
        self.n_units, self.p = n_units, dropout
        with untouched_global_rng():  # constructors draw from the global RNG: restore it
            self.embed_inner = nn.Parameter(torch.empty(positions, k_max, m))
            self.embed_inner_bias = nn.Parameter(torch.zeros(positions, m))
            self.embed_outer = nn.Parameter(torch.empty(positions, m, m))
            self.embed_outer_bias = nn.Parameter(torch.zeros(positions, m))
            self.position = nn.Parameter(torch.empty(positions, m))
            self.encoder = nn.ModuleList(
                EncoderLayer(m, n_heads, ffn_width, dropout) for _ in range(n_encoder_layers)
            )
            self.decoder = nn.ModuleList(
                DecoderLayer(m, n_heads, ffn_width, dropout) for _ in range(n_decoder_layers)
            )
            self.encoder_norm, self.decoder_norm = nn.LayerNorm(m), nn.LayerNorm(m)
            n_out = class_mask.shape[1]
            self.head = nn.Parameter(torch.empty(n_units, m, n_out))
            self.head_bias = nn.Parameter(torch.zeros(n_units, n_out))
        self.register_buffer("class_mask", class_mask.clone())
        self._initialise(generator)

    def _initialise(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name == "position":
                    nn.init.trunc_normal_(param, std=0.02, a=-0.04, b=0.04, generator=generator)
                elif name.endswith("bias"):  # per-position biases are 2-D: test the name first
                    param.zero_()
                elif param.dim() == 3:  # per-position matrices: each its own Xavier init
                    for matrix in param:
                        nn.init.xavier_uniform_(matrix, generator=generator)
                elif param.dim() == 2:
                    nn.init.xavier_uniform_(param, generator=generator)
                elif "norm" in name and name.endswith("weight"):
                    param.fill_(1.0)
                else:
                    param.zero_()

    # ------------------------------------------------------------------------------ pieces
    def embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Embeddings (n, L, m) of tokens (n, L, k_max) at positions ``start .. start + L - 1``."""
        pos = slice(start, start + tokens.shape[1])
        h = torch.einsum("nlk,lkm->nlm", tokens, self.embed_inner[pos])
        h = F.relu(h + self.embed_inner_bias[pos])
        h = torch.einsum("nlm,lmo->nlo", h, self.embed_outer[pos]) + self.embed_outer_bias[pos]
        return h + self.position[pos]

    def encode(self, src: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encoder output (n, T + 1, m) of source tokens (n, T + 1, k_max)."""
        x = dropout(self.embed(src), self.p, generator, self.training)
        for layer in self.encoder:
            x = layer(x, generator)
        return self.encoder_norm(x)

    def logits(self, hidden: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Head logits (n, L, n_out) of decoder outputs (n, L, m) for units ``start ..``."""
        units = slice(start, start + hidden.shape[1])
        out = torch.einsum("nlm,lmc->nlc", hidden, self.head[units]) + self.head_bias[units]
        return out.masked_fill(~self.class_mask[units], MASKED_LOGIT)

    def forward(
        self, src: torch.Tensor, tgt: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Teacher-forced logits (n, T, n_out).

        Parameters
        ----------
        src : tensor (n, T + 1, k_max)
            Tokens of ``[y~, x]``.
        tgt : tensor (n, T, k_max)
            Tokens of ``[y~+, x+_1 .. x+_{T-1}]``.
        generator : torch.Generator, optional
            Dropout masks (training mode only).
        """
        memory = self.encode(src, generator)
        x = dropout(self.embed(tgt), self.p, generator, self.training)
        for layer in self.decoder:
            x = layer(x, memory, generator)
        return self.logits(self.decoder_norm(x))

    # ------------------------------------------------------------------ incremental decoding
    def start_decoding(self, memory: torch.Tensor) -> list[LayerCache]:
        """Per-layer caches for decoding a batch with encoder output ``memory`` (n, T + 1, m)."""
        n, _, m = memory.shape
        caches = []
        for layer in self.decoder:
            heads = layer.self_attn.n_heads
            shape = (n, heads, self.n_units, m // heads)
            mk, mv = layer.cross_attn.keys_values(memory)
            caches.append(LayerCache(memory.new_empty(shape), memory.new_empty(shape), mk, mv))
        return caches

    def decode_step(self, token: torch.Tensor, t: int, caches: list[LayerCache]) -> torch.Tensor:
        """Logits (n, n_out) of unit ``t`` given the decoder token (n, k_max) at position ``t``.

        Position 0 holds ``y~+``, position ``t`` the value of unit ``t - 1`` (0-based); steps must
        be taken in order ``t = 0, 1, ...`` (eval mode: no dropout).
        """
        x = self.embed(token[:, None, :], start=t)
        for layer, cache in zip(self.decoder, caches, strict=True):
            x = layer.step(x, t, cache)
        return self.logits(self.decoder_norm(x), start=t)[:, 0]
