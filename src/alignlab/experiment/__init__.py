"""Experiments: fine-tune, measure again, report.

    alignlab experiment run CONFIG.yaml [--out DIR] [--dry-run]
    alignlab demo [--quick]

A YAML config (`configs/demo.yaml` is the shipped example) names the base model, shared
pre-stages, arms (datasets with weights, or `none`), post-stages, suites, seeds and judge;
`run_experiment` builds and checks the datasets, trains every stage, evaluates every model
on every suite and writes the report, resumable stage by stage into one directory.

    cfg = load_config("configs/demo.yaml")
    record = run_experiment(cfg, "runs/demo")
"""

from pathlib import Path

from alignlab.experiment._config import ExperimentConfig, load_config
from alignlab.experiment._run import EXPERIMENT_JSON, dry_run, make_plan, run_experiment

CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_config(name: str) -> Path:
    """A config shipped with alignlab (`demo`, `demo_quick`)."""
    return CONFIGS / f"{name}.yaml"


__all__ = ["CONFIGS", "EXPERIMENT_JSON", "ExperimentConfig", "dry_run", "load_config", "make_plan",
           "run_experiment", "shipped_config"]
