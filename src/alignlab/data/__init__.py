"""Training data that teaches why: recipes, built offline from a seed library or with a
teacher model, checked against every evaluation suite before anyone trains on them.

    alignlab data build advice --n 1000 --out advice.jsonl
    alignlab data check advice.jsonl --dedup

Recipes are listed in `_recipe.RECIPES`; the constitution they teach is `constitution.md`.
"""

from ._constitution import Constitution, Principle, load_constitution
from ._recipe import FORMATS, RECIPES, Context, Plan, Reject, get_recipe

__all__ = [
    "FORMATS",
    "RECIPES",
    "Constitution",
    "Context",
    "Plan",
    "Principle",
    "Reject",
    "get_recipe",
    "load_constitution",
]
