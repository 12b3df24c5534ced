"""env: see the package docstring of training."""
