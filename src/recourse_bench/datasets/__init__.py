"""Dataset plugins: ``load(seed) -> Splits`` in model space."""

from . import german, synthetic_gaussians

__all__ = ["german", "synthetic_gaussians"]
