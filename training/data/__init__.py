"""data: see the package docstring of training."""
