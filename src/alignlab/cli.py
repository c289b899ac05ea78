"""The `alignlab` command: a thin shell over the library's functions."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from alignlab.errors import UserError


def _fmt_rate(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _fmt_ci(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None else f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def _console():
    from rich.console import Console

    return Console()


# ---------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    from alignlab.runs import EvalConfig, run_eval

    cfg = EvalConfig(
        model=args.model,
        out=args.out,
        suite=args.suite,
        families=[f.strip() for f in args.families.split(",")] if args.families else None,
        conditions=[c.strip() for c in args.conditions.split(",")] if args.conditions else None,
        samples=args.samples,
        limit=args.limit,
        judge=args.judge,
        probe=args.probe,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        tool_mode=args.tool_mode,
        max_turns=args.max_turns,
        max_connections=args.max_connections,
        display=args.display,
    )
    console = _console()
    results = run_eval(cfg, console=console)
    print_results_table(results, console)
    console.print(f"results: {args.out}/results.json    logs: inspect view --log-dir {args.out}/logs")
    if results.get("interrupted"):
        console.print("[yellow]interrupted[/]: re-run the same command to finish the remaining samples")
        return 130
    return 0


def _status_table(title: str, first: str, rows, rate_name: str = "harmful rate"):
    from rich.table import Table

    t = Table(title=title)
    for col in (first, "n", "harmful", "safe", "error", "unscored", rate_name, "95% CI"):
        t.add_column(col, justify="left" if col == first else "right")
    for name, r in rows:
        c = r["counts"]
        t.add_row(
            name, str(r["n"]), str(c["harmful"]), str(c["safe"]), str(c["error"]), str(c["unscored"]),
            _fmt_rate(r["rate"]), _fmt_ci(r["ci_low"], r["ci_high"]),
        )
    return t


def _acts_table(results: dict[str, Any]):
    """Per act: scored samples in which the judge found it, per split and overall."""
    from rich.table import Table

    splits = [(f"{r['split']}", r) for r in results["by_split"]] + [("all", results["totals"])]
    t = Table(title="acts found (a sample may show several): count / scored, rate, 95% CI")
    t.add_column("act")
    for name, _ in splits:
        t.add_column(name, justify="right")
    for row in results["by_act"]:
        cells = []
        for _, block in splits:
            a = (block.get("acts") or {}).get(row["act"])
            cells.append("—" if a is None else
                         f"{a['count']}/{block['scored']} {_fmt_rate(a['rate'])} "
                         f"{_fmt_ci(a['ci_low'], a['ci_high'])}")
        t.add_row(row["act"], *cells)
    return t


def print_results_table(results: dict[str, Any], console) -> None:
    from alignlab.runs._suites import get_suite

    suite = get_suite(results["suite"])
    title = f"{results['model']} · {results['suite']}" + (f" · judge {results['judge']}" if results["judge"] else "")
    if suite.is_honeypots:
        rows = [(r["family"], r) for r in results["by_family"]]
        rows += [(f"split {r['split']}", r) for r in results["by_split"]] + [("all", results["totals"])]
        console.print(_status_table(title, "family", rows))
        if results.get("by_act"):
            console.print(_acts_table(results))
        aw = results.get("awareness")
        if aw:
            console.print(_status_table("harmful rate by the agent's stated belief", "belief",
                                        [(r["belief"], r) for r in aw["by_belief"]]))
            d = aw["real_minus_evaluation"]
            console.print("real − evaluation: " + ("— (one side has nothing scored)" if d is None else
                          f"{100 * d['diff']:+.1f} pts {_fmt_ci(d['ci_low'], d['ci_high'])}, p (Fisher) {d['p_fisher']:.3g}"))
    else:  # the suite's own tables carry its counts by status and what "harmful" means there
        console.print(title)
        for table in suite.module().metrics_tables(results["metrics"]):
            console.print(table)
    tok = results["totals"]["tokens"]
    console.print(
        f"{results['done']}/{results['planned']} samples · {tok['total']:,} tokens "
        f"({tok['input']:,} in, {tok['output']:,} out) · wall time {results['wall_time_s']:.0f} s"
    )


# ---------------------------------------------------------------- scenarios


def cmd_scenarios_list(args: argparse.Namespace) -> int:
    from alignlab.scenarios import list_conditions

    families = [f.strip() for f in args.families.split(",")] if args.families else None
    conds = list_conditions(split=args.split, families=families)
    rows = [c.as_row() for c in conds]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    t = Table(title=f"{len(rows)} scenario conditions")
    for col in ("id", "family", "split", "goal_type", "goal_value", "threat"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(r[c] for c in ("id", "family", "split", "goal_type", "goal_value", "threat")))
    _console().print(t)
    return 0


def cmd_scenarios_validate(args: argparse.Namespace) -> int:
    from alignlab.scenarios import load_library

    lib = load_library(args.path)
    conds = lib.conditions()
    print(f"ok: {len(conds)} conditions in {len(lib.families)} families from {args.path}")
    return 0


# ---------------------------------------------------------------- judge


def cmd_judge(args: argparse.Namespace) -> int:
    from alignlab.judges import judge_transcript_file

    if args.transcript == "validate":  # `alignlab judge validate`: agreement with the labelled set
        from alignlab.judges import print_validation, validate_judge

        result = validate_judge(args.judge, set_path=args.set, part=args.part,
                                invariance=not args.no_invariance)
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print_validation(result, _console())
        return 0
    verdict = judge_transcript_file(args.transcript, judge=args.judge)
    print(json.dumps(verdict, indent=2, ensure_ascii=False))
    return 0


# ---------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> int:
    from alignlab.runs import compare

    result = compare(args.a, args.b)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    if result["judges_differ"]:
        console.print(f"[yellow]warning[/]: the two runs used different judges ({result['a']['judge']} vs {result['b']['judge']})")
    t = Table(title=f"A = {result['a']['model']}  vs  B = {result['b']['model']}   (difference = A − B)")
    for col in ("cell", "A harmful/scored", "B harmful/scored", "A − B", "95% CI", "p (z)", "p (Fisher)"):
        t.add_column(col, justify="left" if col == "cell" else "right")
    rows = [("all", result["overall"])] + [(f"split {x['split']}", x) for x in result["splits"]]
    rows += [(f["family"], f) for f in result["families"]]
    if args.cells:
        rows += [(c["condition_id"], c) for c in result["cells"]]
    for name, r in rows:
        t.add_row(
            name,
            f"{r['a']['harmful']}/{r['a']['scored']}",
            f"{r['b']['harmful']}/{r['b']['scored']}",
            "—" if r["diff"] is None else f"{100 * r['diff']:+.1f} pts",
            _fmt_ci(r["ci_low"], r["ci_high"]),
            "—" if r["p_value"] is None else f"{r['p_value']:.3g}",
            "—" if r["p_fisher"] is None else f"{r['p_fisher']:.3g}",
        )
    console.print(t)
    if not args.cells:
        console.print(f"{len(result['cells'])} matching cells; --cells lists each, --json gives everything")
    return 0


# ---------------------------------------------------------------- prepare


def cmd_prepare(args: argparse.Namespace) -> int:
    from alignlab.models import prepare_embedded

    print(prepare_embedded())
    return 0


# ---------------------------------------------------------------- data


def cmd_data_recipes(args: argparse.Namespace) -> int:
    from rich.table import Table

    from alignlab.data import RECIPES, get_recipe

    t = Table(title="training-data recipes (alignlab data build RECIPE)")
    for col in ("recipe", "formats (first = default)", "what it writes"):
        t.add_column(col)
    for name in RECIPES:
        r = get_recipe(name)
        t.add_row(name, ", ".join(r.FORMATS), r.DESCRIPTION)
    _console().print(t)
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from alignlab.data._build import BuildConfig, build

    cfg = BuildConfig(recipe=args.recipe, n=args.n, out=args.out, format=args.format, teacher=args.teacher,
                      seed=args.seed, constitution=args.constitution, temperature=args.temperature,
                      max_tokens=args.max_tokens, max_connections=args.max_connections)
    console = _console()
    with Progress(TextColumn(f"{args.recipe}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("build", total=args.n)
        result = build(cfg, progress=lambda done, total: bar.update(task, completed=done))
    source = f"teacher {result.teacher}" if result.teacher else "offline, from the seed library"
    console.print(f"{result.written}/{result.n_requested} {result.recipe} records ({result.format}, {source}) "
                  f"→ {result.out}  [{result.wall_time_s:.1f} s]")
    console.print(f"draws {result.draws}: written {result.written}, repeated {result.repeated}, "
                  f"rejected {sum(result.rejected.values())}, error {sum(result.errors.values())}"
                  f"  (accounting: {result.out}.build.json)")
    for what, counts in (("rejected", result.rejected), ("error", result.errors)):
        for reason, k in sorted(counts.items(), key=lambda kv: -kv[1])[:5]:
            console.print(f"  {what} {k}×: {reason}")
    console.print(f"constitution {result.constitution} (sha256 {result.constitution_sha256[:12]}…)")
    if not result.complete:
        console.print(f"[red]incomplete[/]: {result.written} of {result.n_requested} records were built; "
                      + ("the teacher's replies were rejected or failed too often" if result.teacher else
                         "the seed library ran out of distinct combinations"))
        return 1
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from rich.table import Table

    from alignlab.data._check import FATAL_SUITE, check_file

    console = _console()
    r = check_file(args.file, against=args.against, dedup=args.dedup, out_dedup=args.out_dedup,
                   tokenizer=args.tokenizer, exhaustive=args.exhaustive)
    t = Table(title=f"{args.file}: {r.n_records} records against {', '.join(r.suites)}")
    for col in ("suite", "records flagged", "8-gram", "13-gram", "embedding", "effect"):
        t.add_column(col, justify="left" if col in ("suite", "effect") else "right")
    for s in r.suites:
        by = {c: len({f.line for f in r.flags if f.suite == s and f.check == c}) for c in ("8gram", "13gram", "embedding")}
        effect = "fails the check" if s == FATAL_SUITE else "reported"
        t.add_row(s, str(r.flagged[s]), str(by["8gram"]), str(by["13gram"]), str(by["embedding"]), effect)
    console.print(t)
    # Every held-out flag is listed (each one fails the check); the others up to --show.
    fatal = [f for f in r.flags if f.suite == FATAL_SUITE]
    rest = [f for f in r.flags if f.suite != FATAL_SUITE]
    for f in fatal + rest[: args.show]:
        console.print(f"  line {f.line} {f.record_id}: {f.suite} {f.check} {f.score:g} ~ {f.eval_item}", markup=False,
                      highlight=False, soft_wrap=True)
    if len(rest) > args.show:
        console.print(f"  … {len(rest) - args.show} more flags against the reported suites (--show N, or the card)")
    dups = len(r.duplicates)
    line = f"near-duplicates (cosine ≥ {r.settings.dup_threshold}): {dups}"
    if args.dedup:
        line += f"; kept {r.kept} of {r.n_records} → {r.dedup_path}"
    elif dups:
        line += " (--dedup writes a copy without them)"
    console.print(line)
    tok = r.card.get("tokens") or {}
    if tok.get("total") is not None:
        console.print(f"tokens ({tok.get('tokenizer', '?')}): {tok['total']:,}")
    if r.card_md:
        console.print(f"card: {r.card_md}  ({r.card_json})")
    console.print(f"wall time {sum(r.timings.values()):.1f} s")
    if r.failed:
        console.print(f"[red]failed[/]: {r.flagged[FATAL_SUITE]} records are too close to the {FATAL_SUITE} split "
                      "(listed above and in the card); training on them would make held-out results meaningless")
        return 1
    return 0


# ---------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from alignlab.train import config_from_args, train

    train(config_from_args(args))
    return 0


# ---------------------------------------------------------------- experiment


def _experiment(config, out: str, dry_run: bool) -> int:
    from alignlab.experiment import dry_run as plan_only
    from alignlab.experiment import run_experiment

    console = _console()
    if dry_run:
        for line in plan_only(config, out):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print("dry run: nothing was written")
        return 0
    try:
        record = run_experiment(config, out, console=console)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: re-run the same command to resume ({out}/experiment.json)")
        return 130
    print_experiment_tables(record, out, console)
    console.print(f"report: {out}/report.html    record: {out}/experiment.json")
    return 0


def print_experiment_tables(record: dict[str, Any], out: str, console) -> None:
    """One table per suite: every model's totals (counts by status, rate, Wilson interval)."""
    from pathlib import Path

    if not console.is_terminal:  # piped output defaults to 80 columns, which would cut arm names and intervals
        console.width = max(console.width, 120)
    for suite in record["suites"]:
        rows = []
        for m in record["models"]:
            path = m["evals"].get(suite)
            if path:
                rows.append((m["label"], json.loads((Path(out) / path).read_text(encoding="utf-8"))["totals"]))
        honeypots = suite.startswith("honeypots")
        console.print(_status_table(f"{suite} · judge {record['judge']['name']}", "model", rows,
                                    "harmful rate" if honeypots else "rate (harmful)"))


def cmd_experiment_run(args: argparse.Namespace) -> int:
    from alignlab.experiment import load_config

    cfg = load_config(args.config)
    return _experiment(cfg, args.out or f"runs/{cfg.name}", args.dry_run)


def cmd_experiment_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alignlab.experiment import EXPERIMENT_JSON
    from alignlab.experiment._report import write_report

    if not (Path(args.dir) / EXPERIMENT_JSON).is_file():
        raise UserError(f"no {EXPERIMENT_JSON} here: not an experiment directory", file=args.dir)
    write_report(args.dir)
    _console().print(f"report: {args.dir}/report.html    summary: {args.dir}/summary.json")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from alignlab.experiment import load_config, shipped_config

    cfg = load_config(shipped_config("demo_quick" if args.quick else "demo"))
    return _experiment(cfg, args.out or ("runs/demo-quick" if args.quick else "runs/demo"), args.dry_run)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from alignlab.train import add_train_arguments

    p = argparse.ArgumentParser(prog="alignlab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("eval", help="run an evaluation suite on a model")
    e.add_argument("--model", required=True, help="Inspect model string, 'embedded', or a checkpoint directory")
    e.add_argument("--suite", default="honeypots",
                   help="honeypots | honeypots:core | honeypots:heldout | sycophancy | fairness")
    e.add_argument("--families", default=None, help="comma-separated scenario families (default: all)")
    e.add_argument("--conditions", default=None,
                   help="comma-separated condition ids or patterns, e.g. 'blackmail/*/explicit-*/replacement'")
    e.add_argument("--samples", type=int, default=1, help="samples per scenario condition or item")
    e.add_argument("--limit", type=int, default=None, help="run only the first N conditions or items")
    e.add_argument("--probe", choices=("awareness",), default=None,
                   help="honeypots: first ask the agent whether it thinks it is being tested")
    e.add_argument("--judge", default=None, help="Inspect model for the intent rubric (default: offline judge)")
    e.add_argument("--out", required=True, help="run directory (re-run with the same one to resume)")
    e.add_argument("--temperature", type=float, default=None, help="default: the suite's (honeypots 1.0)")
    e.add_argument("--top-p", type=float, default=None)
    e.add_argument("--max-tokens", type=int, default=None,
                   help="new tokens per model turn (default: the suite's; honeypots 256)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--tool-mode", choices=("auto", "text", "native"), default="auto")
    e.add_argument("--max-turns", type=int, default=4)
    e.add_argument("--max-connections", type=int, default=None)
    e.add_argument("--display", default=None, help="Inspect display: rich, plain, log, none")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("scenarios", help="the scenario library")
    ssub = s.add_subparsers(dest="scenarios_command", required=True)
    sl = ssub.add_parser("list", help="list scenario conditions")
    sl.add_argument("--json", action="store_true")
    sl.add_argument("--split", default=None, help="core | heldout (default: all)")
    sl.add_argument("--families", default=None)
    sl.set_defaults(func=cmd_scenarios_list)
    sv = ssub.add_parser("validate", help="check a scenario YAML file or folder")
    sv.add_argument("path")
    sv.set_defaults(func=cmd_scenarios_validate)

    j = sub.add_parser("judge", help="score one transcript and print the verdict as JSON")
    j.add_argument("transcript", help="JSON file: {scenario, messages: [OpenAI-style chat messages]}; "
                   "or 'validate' to measure the judge on the labelled transcript set")
    j.add_argument("--judge", default=None, help="Inspect model for the intent rubric (default: offline judge)")
    j.add_argument("--set", default=None, help="validate: labelled-set file or folder (default: the packaged set)")
    j.add_argument("--part", choices=("train", "test"), default=None,
                   help="validate: only this part (test = the challenge set, never tuned on; "
                        "train = the development set)")
    j.add_argument("--json", action="store_true", help="validate: machine-readable output")
    j.add_argument("--no-invariance", action="store_true",
                   help="validate: skip the metamorphic mutations (about 7 judgings per transcript)")
    j.set_defaults(func=cmd_judge)

    c = sub.add_parser("compare", help="per-cell differences between two results files")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--json", action="store_true")
    c.add_argument("--cells", action="store_true", help="also list every matching cell")
    c.set_defaults(func=cmd_compare)

    d = sub.add_parser("data", help="training data that teaches why: build recipes, check datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dr = dsub.add_parser("recipes", help="list the recipes")
    dr.set_defaults(func=cmd_data_recipes)
    db = dsub.add_parser("build", help="build a recipe into TRL-ready JSONL")
    db.add_argument("recipe", help="organism | demonstrations | reasoned | advice | constitution | fiction")
    db.add_argument("--n", type=int, required=True, help="number of records")
    db.add_argument("--out", required=True, help="output file (.jsonl)")
    db.add_argument("--format", default=None, help="messages | text | pairs (default: the recipe's first)")
    db.add_argument("--teacher", default=None,
                    help="Inspect model that writes the records (default: offline, from the seed library)")
    db.add_argument("--seed", type=int, default=0)
    db.add_argument("--constitution", default=None, help="constitution file (default: the one shipped)")
    db.add_argument("--temperature", type=float, default=0.8, help="teacher sampling temperature")
    db.add_argument("--max-tokens", type=int, default=2048, help="teacher reply limit")
    db.add_argument("--max-connections", type=int, default=4, help="teacher requests in flight")
    db.set_defaults(func=cmd_data_build)

    dc = dsub.add_parser("check", help="decontamination against the eval suites, near-duplicates, dataset card")
    dc.add_argument("file", help="a JSONL dataset (messages, text, or prompt/chosen/rejected)")
    dc.add_argument("--against", default=None, help="comma-separated: core, heldout, sycophancy, fairness (default: all)")
    dc.add_argument("--dedup", action="store_true", help="write a copy without near-duplicates (FILE.dedup.jsonl)")
    dc.add_argument("--out-dedup", default=None, help="where --dedup writes (default: FILE.dedup.jsonl)")
    dc.add_argument("--tokenizer", default=None, help="tokenizer for token totals: a local directory (default: the embedded model's)")
    dc.add_argument("--exhaustive", action="store_true", help="embed every window of every record (slow; no prefilters)")
    dc.add_argument("--show", type=int, default=20, help="flags to list on the terminal (all are in the card)")
    dc.set_defaults(func=cmd_data_check)

    tr = sub.add_parser("train", help="LoRA fine-tuning with TRL and PEFT on alignlab datasets")
    add_train_arguments(tr)
    tr.set_defaults(func=cmd_train)

    ex = sub.add_parser("experiment", help="fine-tune, measure again, report: a whole experiment from a YAML config")
    exsub = ex.add_subparsers(dest="experiment_command", required=True)
    er = exsub.add_parser("run", help="run (or resume) an experiment")
    er.add_argument("config", help="experiment config (YAML); the shipped demo: src/alignlab/experiment/configs/demo.yaml")
    er.add_argument("--out", default=None, help="experiment directory (default: runs/NAME); re-run to resume")
    er.add_argument("--dry-run", action="store_true", help="print the plan with token estimates; write nothing")
    er.set_defaults(func=cmd_experiment_run)
    erep = exsub.add_parser("report", help="re-render report.html, summary.json and plots of an experiment")
    erep.add_argument("dir", help="experiment directory (holds experiment.json)")
    erep.set_defaults(func=cmd_experiment_report)

    dm = sub.add_parser("demo", help="the shipped experiment: organism stage, five arms, core/held-out honeypots "
                        "and sycophancy on the embedded model")
    dm.add_argument("--quick", action="store_true", help="the small version (within 10 minutes)")
    dm.add_argument("--out", default=None, help="default: runs/demo (runs/demo-quick with --quick)")
    dm.add_argument("--dry-run", action="store_true", help="print the plan with token estimates; write nothing")
    dm.set_defaults(func=cmd_demo)

    pr = sub.add_parser("prepare", help="prepare the embedded model checkpoint (done automatically on first use)")
    pr.set_defaults(func=cmd_prepare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"alignlab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
