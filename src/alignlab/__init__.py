"""alignlab: measure agentic misalignment, build training data that teaches why, re-measure."""

__version__ = "0.1.0"
