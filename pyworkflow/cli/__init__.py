"""The ``pyworkflow`` command line (click + rich). Entry point: ``pyworkflow.cli:main``."""

from pyworkflow.cli.app import main

__all__ = ["main"]
