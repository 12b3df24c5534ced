"""Helpers that the tests and the benchmarks share, imported as ``tests.support.<module>``.

- ``jack_server``: a real JACK server (dummy driver), started and stopped cleanly.
- ``jack_probe``: a frame-exact MIDI keyboard and ear on JACK, and a ``deepjam jam`` runner.
- ``scale_model``: a tiny hand-made ONNX model that plays a C-major scale (no torch).
- ``link_peer``: a second Ableton Link peer on a thread of its own.
- ``headless_browser``: a real headless Chromium for the web panel.
- ``corpus``: a tiny corpus and style config that train in seconds.
- ``waiting``: ``eventually(predicate, timeout_s)`` instead of sleeps.

The fixtures that use them are in tests/conftest.py; the fakes (recording sink, fake clock) are
in tests/fakes.py.
"""
