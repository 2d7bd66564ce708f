"""Seeds derived from component names, so that every method faces the same data and models.

Seeds never depend on the method: the base model, the factuals and the updated models of a cell are
the same for every method, which makes comparisons between methods paired. Nothing here touches
global random state.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

_MAX_SEED = 2**31 - 1


def derive_seed(base: int, *names: object) -> int:
    """A deterministic seed in [0, 2**31) from a base seed and component names.

    >>> derive_seed(0, "german", "logreg", 1) == derive_seed(0, "german", "logreg", 1)
    True
    >>> derive_seed(0, "german", 1) != derive_seed(0, "german", 2)
    True
    """
    text = "\x1f".join([str(int(base)), *(str(name) for name in names)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % _MAX_SEED


def numpy_rng(seed: int) -> np.random.Generator:
    """A numpy generator for ``seed`` (never the global one)."""
    return np.random.default_rng(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU torch generator for ``seed`` (never the global one)."""
    return torch.Generator().manual_seed(int(seed))


def generator_for(random_state: int | None) -> torch.Generator:
    """A torch generator for a method's ``random_state`` (fresh entropy when it is None)."""
    return torch_generator(int(np.random.default_rng(random_state).integers(2**62)))
