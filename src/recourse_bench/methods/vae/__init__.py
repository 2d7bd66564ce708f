"""Recourse in the latent space of a trained generative model: REVISE, CCHVAE and CRUDS.

* ``revise`` (:mod:`.revise`; Joshi et al. 2019): gradient descent on the VAE's latent code;
* ``cchvae`` (:mod:`.cchvae`; Pawelczyk et al. 2020): growing spheres in the VAE's latent space,
  using only the model's predictions;
* ``cruds`` (:mod:`.cruds`; Downs et al. 2020): gradient descent on the label code ``w`` of a
  conditional-subspace VAE (CSVAE), its label-free code ``z`` held at the factual's.

How the generative models are shared (:mod:`.shared`): a network depends only on the training
rows (the CSVAE also on their labels), the schema's mutable mask, its hyperparameters (the
methods' ``vae_*`` parameters) and a seed derived from ``random_state`` that does not depend on
the method. A module-level cache keyed by a hash of these trains each network once per process:
REVISE and CCHVAE fitted on the same splits with the same ``random_state`` (and the default
``vae_*``) share one trained VAE whatever the deployed model, and every CRUDS fit on those splits
shares one trained CSVAE. CRUDS needs the CSVAE's label subspace, which a plain VAE does not
have, so it cannot reuse REVISE's VAE. Each fitted method keeps a reference to its network
(``vae_``), so a pickled fitted method (the harness caches them) carries it along.

Shared pieces: :mod:`.model` (the networks), :mod:`.train` (their training loops), :mod:`.shared`
(the cache), :mod:`.base` (fit, the straight-through snapping, the reported latent points).
"""

from . import cchvae, cruds, revise
from .cchvae import CCHVAE
from .cruds import CRUDS
from .revise import Revise

__all__ = ["CCHVAE", "CRUDS", "Revise", "cchvae", "cruds", "revise"]
