"""Batched forward sampling of recourse candidates from GenRe's trained transformer.

For factuals ``X`` (n, d): encode ``[+1, x]`` once per factual, repeat the encoder output for the
``K`` candidates of each factual, and decode all ``n * K`` sequences together, one unit per step,
with cached keys and values (so each step costs one token per sequence). At each step the logits
are multiplied by ``tau`` and a class is drawn:

* a binned unit takes the drawn bin's value ``b_j`` (plus optional Gaussian noise of
  standard deviation ``noise``), clipped to the factual's box (bounds and direction) and rounded
  to the integer grid, so that later units are conditioned on a feasible value;
* a categorical unit takes the drawn level, written back as a one-hot block; a level the factual's
  box rules out (a direction constraint on the group) is never drawn (:func:`allowed_levels`);
* an immutable unit keeps the factual's value (nothing is drawn).

Classes are drawn by inverting the CDF at uniforms from a CPU generator (:func:`draw`), so the
same seed gives the same samples on any device. Steps after the last mutable unit are skipped
(they could only predict immutable units).
"""

from __future__ import annotations

import numpy as np
import torch

from ...api import Schema
from .layout import Layout
from .model import GenReTransformer

MAX_SEQUENCES = 32768  # sequences decoded together at most (factuals x candidates)


class UnitBounds:
    """Clipping and integer-grid rounding of sampled values, column by column."""

    def __init__(self, schema: Schema):
        self.lower = schema.lower_array
        self.steps = np.asarray(schema.steps, dtype=float)

    def fit(self, v: torch.Tensor, col: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """``v`` clipped to [lo, hi], rounded to column ``col``'s grid, clipped again."""
        v = torch.minimum(torch.maximum(v, lo), hi)
        step, lower = float(self.steps[col]), float(self.lower[col])
        if step > 0:
            v = lower + torch.round((v - lower) / step) * step
            v = torch.minimum(torch.maximum(v, lo), hi)
        return v


@torch.inference_mode()
def sample_candidates(
    net: GenReTransformer,
    layout: Layout,
    schema: Schema,
    X: np.ndarray,
    *,
    n_candidates: int,
    tau: float,
    noise: float,
    generator: torch.Generator,
    device: torch.device,
) -> np.ndarray:
    """``n_candidates`` sampled recourses per factual, shape (n, K, d), before snapping.

    Factuals are processed in chunks of at most ``MAX_SEQUENCES // n_candidates`` rows, each
    chunk as one batch. ``generator`` is a CPU generator (for every draw, whatever ``device``).
    """
    n, d = X.shape
    out = np.empty((n, n_candidates, d))
    lo, hi = schema.bounds_for(X)
    bounds = UnitBounds(schema)
    chunk = max(1, MAX_SEQUENCES // n_candidates)
    net.eval()
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        out[part] = _sample_chunk(
            net,
            layout,
            bounds,
            X[part],
            lo[part],
            hi[part],
            n_candidates,
            tau,
            noise,
            generator,
            device,
        )
    return out


def _sample_chunk(
    net: GenReTransformer,
    layout: Layout,
    bounds: UnitBounds,
    X: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    k: int,
    tau: float,
    noise: float,
    generator: torch.Generator,
    device: torch.device,
) -> np.ndarray:
    def repeated(A: np.ndarray) -> torch.Tensor:
        tensor = torch.as_tensor(A, dtype=torch.float32, device=device)
        return tensor.repeat_interleave(k, dim=0)

    x = torch.as_tensor(X, dtype=torch.float32, device=device)
    memory = net.encode(layout.tokens(x, 1.0)).repeat_interleave(k, dim=0)
    out, lo_t, hi_t = repeated(X), repeated(lo), repeated(hi)
    caches = net.start_decoding(memory)
    token = _label_token(layout, out)
    bins = layout.bins(device)
    mutable = np.flatnonzero(~layout.immutable)
    last = int(mutable[-1]) if mutable.size else -1
    for t in range(last + 1):
        logits = net.decode_step(token, t, caches)
        if not layout.immutable[t]:
            cols = list(layout.columns[t])
            allowed = net.class_mask[t].expand_as(logits)
            if layout.categorical[t]:
                allowed = allowed.clone()
                allowed[:, : len(cols)] &= allowed_levels(lo_t[:, cols], hi_t[:, cols])
            scaled = (tau * logits).masked_fill(~allowed, float("-inf"))
            choice = draw(torch.softmax(scaled, dim=-1), generator)
            if layout.categorical[t]:
                out[:, cols] = torch.nn.functional.one_hot(choice, len(cols)).to(out.dtype)
            else:
                c = cols[0]
                v = bins[choice]
                if noise > 0:
                    v = v + noise * torch.randn(v.shape, generator=generator).to(v)
                out[:, c] = bounds.fit(v, c, lo_t[:, c], hi_t[:, c])
        token = layout.unit_token(out, t)
    return out.reshape(len(X), k, -1).double().cpu().numpy()


def allowed_levels(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Bool (n, L): the levels of a one-hot group that the factual's box allows.

    A level whose column the box fixes at 0 is ruled out; a level whose column it fixes at 1 is
    the only one allowed.
    """
    forced = lo > 0.5
    return torch.where(forced.any(dim=1, keepdim=True), forced, hi > 0.5)


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One class per row of ``probs`` (n, C), by inverting the CDF at uniforms from ``generator``.

    The uniforms come from a CPU generator whatever the device of ``probs``, so that the same
    seed draws the same classes on a CPU and on a GPU (``torch.multinomial`` does not).
    """
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(len(probs), 1, generator=generator).to(cdf) * cdf[:, -1:]
    choice = torch.searchsorted(cdf, u, right=True).reshape(-1)  # never a class of probability 0
    return choice.clamp_(max=probs.shape[1] - 1)


def _label_token(layout: Layout, rows: torch.Tensor) -> torch.Tensor:
    """The decoder's first token ``y~+ = +1`` for every row, shape (n, k_max)."""
    token = rows.new_zeros(rows.shape[0], layout.k_max)
    token[:, 0] = 1.0
    return token
