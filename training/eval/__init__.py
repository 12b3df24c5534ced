"""eval: see the package docstring of training."""
