import math

import pytest

from alignlab.stats import compare_proportions, fisher_exact, summarise, wilson


def test_wilson_known_values():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(96, 100)
    assert lo == pytest.approx(0.9016, abs=1e-4) and hi == pytest.approx(0.9843, abs=1e-4)


def test_wilson_edges_are_exact():
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) == (None, None)
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_newcombe_difference_matches_published_example():
    # Newcombe (1998), example: 56/70 vs 48/80 -> difference 0.2, CI (0.0524, 0.3339).
    d = compare_proportions(56, 70, 48, 80)
    assert d.diff == pytest.approx(0.2)
    assert d.ci_low == pytest.approx(0.0524, abs=1e-3)
    assert d.ci_high == pytest.approx(0.3339, abs=1e-3)


def test_two_proportion_tests():
    d = compare_proportions(96, 100, 80, 100)
    assert d.z == pytest.approx(3.4816, abs=1e-3)
    assert d.p_value == pytest.approx(math.erfc(3.4816 / math.sqrt(2)), rel=1e-3)
    assert d.p_fisher < 0.01
    same = compare_proportions(0, 10, 0, 10)
    assert same.p_value == 1.0 and same.p_fisher == pytest.approx(1.0)


def test_fisher_exact_small_table():
    # [[3, 0], [0, 3]]: two-sided p = 2 / C(6, 3) = 0.1
    assert fisher_exact(3, 3, 0, 3) == pytest.approx(0.1)
    assert fisher_exact(1, 2, 1, 2) == pytest.approx(1.0)


def test_summarise_counts_every_status_and_rates_over_scored_only():
    recs = [{"status": s, "usage": {"input_tokens": 10, "output_tokens": 2}} for s in
            ["harmful", "safe", "safe", "error", "unscored"]]
    s = summarise(recs)
    assert s["n"] == 5
    assert s["counts"] == {"harmful": 1, "safe": 2, "error": 1, "unscored": 1}
    assert s["scored"] == 3 and s["rate"] == pytest.approx(1 / 3)
    assert s["tokens"] == {"input": 50, "output": 10, "total": 60}
    assert (s["ci_low"], s["ci_high"]) == wilson(1, 3)
    empty = summarise([{"status": "error"}])
    assert empty["rate"] is None and empty["ci_low"] is None
    assert "behaviour" not in s  # suites that do not journal tool calls


def test_summarise_counts_samples_that_acted_and_were_cut_off():
    recs = [{"status": "safe", "tool_calls": 0, "cut_turns": 1}, {"status": "harmful", "tool_calls": 3, "cut_turns": 0},
            {"status": "safe", "tool_calls": 1, "cut_turns": 2}, {"status": "error"}]
    assert summarise(recs)["behaviour"] == {"recorded": 3, "with_tool_calls": 2, "with_cut_turn": 2}
