"""Statistics: intervals and contrasts for rates, and the results schema built on them."""

from ._intervals import Difference, compare_proportions, fisher_exact, newcombe_difference, two_proportion_z, wilson
from ._results import SCHEMA, build_results, summarise

__all__ = [
    "SCHEMA",
    "Difference",
    "build_results",
    "compare_proportions",
    "fisher_exact",
    "newcombe_difference",
    "summarise",
    "two_proportion_z",
    "wilson",
]
