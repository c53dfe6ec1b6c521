"""Adapters: the only modules that talk to the outside world (git, GitHub, the LLM, subprocesses, databases)."""
