"""Inspect entry point (`[project.entry-points.inspect_ai]`): importing this registers
alignlab's model provider and tasks with Inspect."""

from alignlab.models import EmbeddedModelAPI  # noqa: F401  (registers the `embedded` provider)
from alignlab.runs._tasks import honeypots  # noqa: F401  (registers `alignlab/honeypots`)
