"""The live view of a jam: one snapshot of what a musician wants to see (``snapshot``), drawn
in place on a terminal with rich (``terminal``)."""
