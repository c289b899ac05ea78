"""Runs: `alignlab eval` orchestration (journal, resume, results) and `alignlab compare`."""

from ._compare import compare, load_results
from ._eval import EvalConfig, resolve_model, run_eval

__all__ = ["EvalConfig", "compare", "load_results", "resolve_model", "run_eval"]
