"""One trained generative model per (training data, configuration, seed), shared in a process.

REVISE and CCHVAE search the latent space of the same :class:`~.model.VAE`; CRUDS searches that
of a :class:`~.model.CSVAE`. Training is the expensive part of fitting any of them, and the
network depends only on the training rows (and, for the CSVAE, their labels), the schema's
mutable mask, the network's hyperparameters and the seed, never on the classifier or on the
method. :func:`trained` therefore keeps every network it trains in a module-level cache keyed by
a SHA-256 of exactly these inputs:

* REVISE and CCHVAE fitted with the same ``random_state`` and the same ``vae_*`` parameters on
  the same splits get *the same* trained VAE object: the first ``fit`` trains it, the others
  find it (whatever the deployed model; a fitted method holds a reference to it);
* fitting CRUDS trains its CSVAE once, likewise shared by every CRUDS fit on those splits;
* the seed of a training is derived from ``random_state`` and the network's kind only (never
  from the method's name), so the sharing also holds across methods: see :func:`training_seed`;
* ``random_state=None`` draws a fresh seed per fit, so such a fit trains its own network, which
  is not cached (it could never be found again).

The cache lives in the process: the harness's worker processes (``-j N``) each train their own
copy, and a pickled fitted method carries its network with it. It keeps the
:data:`MAX_CACHED` most recently used networks (a [512, 256, 8] VAE of Adult is about 1.3 MB).
:data:`TRAININGS` counts the trainings this process has done per kind, and :func:`clear` empties
the cache (tests use both). Look-ups and trainings are serialised by a lock, so two threads
asking for the same network train it once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch

from ...seeding import derive_seed
from .model import CSVAE, VAE
from .train import History, train_csvae, train_vae

#: Networks kept in the cache (least recently used ones are dropped first).
MAX_CACHED = 8

#: Trainings done in this process, by kind (``"vae"``, ``"csvae"``).
TRAININGS: Counter[str] = Counter()

_CACHE: OrderedDict[str, Trained] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class VAEConfig:
    """Hyperparameters of one generative model (see the methods' ``vae_*`` parameters).

    Attributes
    ----------
    kind : {"vae", "csvae"}
        Which network.
    layers : tuple of int
        Hidden widths, then the latent dimension (``z``'s for the CSVAE).
    epochs, batch_size : int
        Passes over the training rows and rows per Adam step.
    lr, weight_decay, kl_weight : float
        Adam's learning rate and weight decay, the VAE's final KL weight (the CSVAE's loss has
        fixed weights and no weight decay: there both are 0 and unused).
    """

    kind: Literal["vae", "csvae"]
    layers: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    kl_weight: float = 0.0


@dataclass
class Trained:
    """A trained network and how its training went."""

    network: VAE | CSVAE
    history: History
    seed: int


def training_seed(random_state: int, kind: str) -> int:
    """The seed of a network trained for ``random_state``: the same for every method."""
    return derive_seed(random_state, "vae-shared", kind)


def cache_key(
    config: VAEConfig, X: np.ndarray, y: np.ndarray | None, mutable: np.ndarray, seed: int
) -> str:
    """SHA-256 of everything a training depends on (labels only where the network reads them)."""
    digest = hashlib.sha256()
    digest.update(repr(sorted(asdict(config).items())).encode())
    digest.update(f"seed={int(seed)}".encode())
    digest.update(np.ascontiguousarray(mutable, dtype=bool).tobytes())
    X = np.ascontiguousarray(X, dtype=np.float64)
    digest.update(repr(X.shape).encode())
    digest.update(X.tobytes())
    if y is not None:
        digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def trained(
    config: VAEConfig,
    X: np.ndarray,
    y: np.ndarray,
    mutable: np.ndarray,
    seed: int,
    *,
    cache: bool = True,
    progress: bool = True,
) -> Trained:
    """The network of ``config`` trained on rows ``X`` (labels ``y``) with ``seed``.

    Returns the cached network when this process already trained it on the same inputs (and
    ``cache``); otherwise trains it (counted in :data:`TRAININGS`) and, with ``cache``, keeps it.
    The returned network is shared: it is in eval mode with gradients off and must not be
    modified.
    """
    labels = np.asarray(y) if config.kind == "csvae" else None
    key = cache_key(config, X, labels, mutable, seed) if cache else ""
    with _LOCK:
        if cache and key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        result = _train(config, X, labels, np.asarray(mutable, dtype=bool), seed, progress)
        TRAININGS[config.kind] += 1
        if cache:
            _CACHE[key] = result
            while len(_CACHE) > MAX_CACHED:
                _CACHE.popitem(last=False)
    return result


def clear() -> None:
    """Empty the cache (the networks already handed out stay with their methods)."""
    with _LOCK:
        _CACHE.clear()


def _train(
    config: VAEConfig,
    X: np.ndarray,
    y: np.ndarray | None,
    mutable: np.ndarray,
    seed: int,
    progress: bool,
) -> Trained:
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    mask = torch.as_tensor(mutable)
    x_mutable, x_immutable = x[:, mask].contiguous(), x[:, ~mask].contiguous()
    n_mutable, n_immutable = int(mutable.sum()), int((~mutable).sum())
    init = torch.Generator().manual_seed(derive_seed(seed, "init"))
    data = torch.Generator().manual_seed(derive_seed(seed, "data"))
    network: VAE | CSVAE
    if config.kind == "vae":
        network = VAE(n_mutable, n_immutable, config.layers, init)
        history = train_vae(
            network,
            x_mutable,
            x_immutable,
            weight_decay=config.weight_decay,
            kl_weight=config.kl_weight,
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            generator=data,
            progress=progress,
        )
    else:
        assert y is not None
        network = CSVAE(n_mutable, n_immutable, config.layers, init)
        history = train_csvae(
            network,
            x_mutable,
            x_immutable,
            torch.as_tensor(y, dtype=torch.long),
            n_features=len(mutable),
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            generator=data,
            progress=progress,
        )
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return Trained(network, history, seed)
