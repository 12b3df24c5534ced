"""Scale-out on Ray (the optional ``scale`` extra): corpus ingest with Ray tasks, sweeps with Ray
Tune, and Ape-X style distributed experience. The single-process path stays the default; the
live side never imports this package."""
