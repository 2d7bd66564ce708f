"""Dataset plugins: ``load(seed) -> Splits`` in model space."""

from . import adult, german, synthetic_gaussians

__all__ = ["adult", "german", "synthetic_gaussians"]
