"""io: see the package docstring of live_agent."""
