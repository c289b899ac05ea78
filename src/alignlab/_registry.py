"""Inspect entry point (`[project.entry-points.inspect_ai]`): importing this registers
alignlab's model provider and tasks with Inspect."""

from alignlab.models import EmbeddedModelAPI  # noqa: F401  (registers the `embedded` provider)
from alignlab.runs._tasks import honeypots  # noqa: F401  (registers `alignlab/honeypots`)
from alignlab.fairness._task import fairness  # noqa: F401,E402  (registers `alignlab/fairness`)
from alignlab.sycophancy._task import sycophancy  # noqa: F401,E402  (registers `alignlab/sycophancy`)
