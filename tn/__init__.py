"""tn: find, ablate and evaluate transfer neurons in decoder LLMs."""

__version__ = "0.1.0"
