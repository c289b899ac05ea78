"""Experiments: fine-tune, measure again, report."""
