"""The evaluation suites `alignlab eval --suite` knows, and what each needs from a run.

Honeypots are built here (scenario conditions × agent × judge); every other suite is a
package with the same small surface — `DEFAULTS`, `plan`, `build_task`, `summarise`,
`metrics_tables` — so adding one is adding a row to `SUITES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from alignlab.errors import UserError

HONEYPOTS = "honeypots"


@dataclass(frozen=True)
class Suite:
    name: str  # what --suite takes
    kind: str  # "honeypots" or the package name under alignlab
    split: str | None = None  # honeypots only: core | heldout | None (both)
    description: str = ""

    @property
    def is_honeypots(self) -> bool:
        return self.kind == HONEYPOTS

    def module(self) -> ModuleType:
        """The package implementing a non-honeypot suite."""
        return importlib.import_module(f"alignlab.{self.kind}")

    def defaults(self) -> dict[str, Any]:
        if self.is_honeypots:
            # The research samples at temperature 1.0; agent turns need room for an email.
            return {"temperature": 1.0, "max_tokens": 256}
        return dict(getattr(self.module(), "DEFAULTS", {}))


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("honeypots", HONEYPOTS, None, "core and held-out honeypot scenarios"),
        Suite("honeypots:core", HONEYPOTS, "core", "the core honeypot scenarios"),
        Suite("honeypots:heldout", HONEYPOTS, "heldout", "held-out scenarios: other domains, formats, levers"),
        Suite("sycophancy", "sycophancy", None, "verifiable questions under belief/preference/self-concept cues"),
        Suite("fairness", "fairness", None, "counterfactual candidate screening pairs"),
    )
}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise UserError(f"unknown suite '{name}'; expected one of {', '.join(SUITES)}", field="--suite") from None
