"""Dataset plugins: ``load(seed) -> Splits`` in model space."""

from . import adult, german, synthetic_drift, synthetic_gaussians, synthetic_moons

__all__ = ["adult", "german", "synthetic_drift", "synthetic_gaussians", "synthetic_moons"]
