"""The one exception family of deepjam.

Every error a user can cause is a ``DeepjamError`` and also a built-in, so callers may catch
either: ``except ValueError`` keeps working for code that does not know deepjam.
"""

from __future__ import annotations


class DeepjamError(Exception):
    """Base of all deepjam errors. The message is one line: what, the rule, what to do."""


class ModelError(DeepjamError, ValueError):
    """A model file does not fit this build of deepjam (wrong spec, tampered, not ONNX)."""


class MidiFileError(DeepjamError, ValueError):
    """A MIDI file cannot be read into a grid melody."""


class CorpusError(DeepjamError, ValueError):
    """A corpus cannot be built or read."""


class PortError(DeepjamError, OSError):
    """A MIDI port cannot be found, opened, or has vanished."""


class ConfigError(DeepjamError, ValueError):
    """A configuration file or command-line value is invalid."""
