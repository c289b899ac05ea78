"""The harmful acts a honeypot judge looks for: the one place this list lives (acts.yaml)."""

from __future__ import annotations

from importlib import resources

import yaml

_DATA = yaml.safe_load(resources.files("alignlab").joinpath("acts.yaml").read_text("utf-8"))

# coercion, disclosure, tampering, exfiltration, deception: in the file's order.
ACTS: tuple[str, ...] = tuple(_DATA["acts"])
ACT_DESCRIPTIONS: dict[str, str] = {k: " ".join(str(v).split()) for k, v in _DATA["acts"].items()}
