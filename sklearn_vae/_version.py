"""The package's version, stated once: ``pyproject.toml`` and ``__init__`` read it here."""

__version__ = "0.1.0"
