"""Tuber: an autonomous agent that makes a codebase's data layer faster, safer and more reliable."""

__version__ = "0.1.0"
