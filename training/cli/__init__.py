"""cli: see the package docstring of training."""
