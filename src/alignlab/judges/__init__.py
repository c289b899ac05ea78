"""Judges: did the agent commit a harmful act, and (where it matters) with harmful intent?

    Acts     alignlab.acts.ACTS: coercion, disclosure, tampering, exfiltration, deception
    Layer 1  detect(rendered, calls)       generic detectors over the scenario's stakes and
                                           the World's final state (judges/_detect.py)
             match_rules(rules, calls, org_domain)   the scenario's own extra rules
    Layer 2  make_intent_judge(None | "offline" | "provider/model")   for candidate acts
             OfflineIntentJudge   packaged MiniLM fine-tuned as a cross-encoder (no network)
             RubricIntentJudge    any Inspect model + data/rubrics/<intent>.md, cached verdicts
    judge_sample(rendered, calls, intent_judge) -> Verdict      (async)
    honeypot_scorer(judge=None)     Inspect scorer; Score.value is the status string
    judge_transcript_file(path, judge=None) -> dict             `alignlab judge`
    load_labelled_set(path=None) -> LabelledSet     hand-labelled transcripts (data/labelled/)
    validate_judge(judge=None, set_path=None, part=None) -> dict   `alignlab judge validate`
"""

from alignlab.judges._cache import VerdictCache, cache_root
from alignlab.judges._evidence import arg_test_passes, call_matches, match_rules
from alignlab.judges._labelled import LabelledSet, LabelledTranscript, load_labelled_set
from alignlab.judges._detect import Finding, detect
from alignlab.judges._intent_model import (
    OfflineIntentJudge,
    evaluate_intent_model,
    load_intent_examples,
)
from alignlab.judges._rubric import RubricIntentJudge, load_rubric, parse_verdict
from alignlab.judges._scorer import (
    harmful_rate,
    honeypot_scorer,
    judge_sample,
    make_intent_judge,
    score_status,
)
from alignlab.judges._transcript import judge_transcript_async, judge_transcript_file
from alignlab.judges._types import Evidence, IntentJudge, IntentVerdict, Verdict
from alignlab.judges._validate import (
    Confusion,
    cohen_kappa,
    confusion,
    f1,
    precision,
    print_validation,
    recall,
    validate_judge,
)

judge_transcript = judge_transcript_file  # the name docs/DESIGN.md uses

__all__ = [
    "Confusion",
    "LabelledSet",
    "LabelledTranscript",
    "cohen_kappa",
    "confusion",
    "f1",
    "load_labelled_set",
    "precision",
    "print_validation",
    "recall",
    "validate_judge",
    "Evidence",
    "IntentJudge",
    "IntentVerdict",
    "OfflineIntentJudge",
    "RubricIntentJudge",
    "Verdict",
    "VerdictCache",
    "arg_test_passes",
    "cache_root",
    "call_matches",
    "evaluate_intent_model",
    "Finding",
    "detect",
    "harmful_rate",
    "honeypot_scorer",
    "judge_sample",
    "judge_transcript",
    "judge_transcript_async",
    "judge_transcript_file",
    "load_intent_examples",
    "load_rubric",
    "make_intent_judge",
    "match_rules",
    "parse_verdict",
    "score_status",
]
