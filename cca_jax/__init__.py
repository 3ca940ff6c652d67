"""cca-jax: learned image compression with the Causal Context Adjustment loss in JAX."""

__version__ = "0.1.0"
