"""The report's figures, drawn from summary.json's numbers (never recomputed here).

Uses matplotlib's object API with the Agg canvas, so drawing never touches pyplot's global
state or needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPLIT_STYLE = {"core": ("#1f77b4", "o"), "heldout": ("#d62728", "s")}
OTHER_STYLE = ("#555555", "^")


def _plain(text: Any) -> str:
    """Labels come from configs; a '$' would switch matplotlib into mathtext and can fail."""
    return str(text).replace("$", r"\$")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _tick_labels(arms: list[dict[str, Any]]) -> list[str]:
    out = []
    for row in arms:
        tags = [t for t, on in (("base", row["kind"] == "base"), ("baseline", row["is_baseline"]),
                                ("reference", row["is_reference"])) if on]
        out.append(_plain(row["label"]) + (f"\n({', '.join(tags)})" if tags else ""))
    return out


def _errorbar(ax, x: float, value: float, low: float, high: float, color: str, marker: str, label: str | None) -> None:
    ax.errorbar([x], [value], yerr=[[value - low], [high - value]], fmt=marker, color=color,
                capsize=4, markersize=7, label=label)


def _finish(fig, ax, path: Path, has_data: bool, empty: str, legend_title: str | None = None) -> None:
    """Legend (or a note that nothing could be drawn), grid, save."""
    if has_data:
        ax.legend(title=legend_title, fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="#888")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def harmful_rate_figure(summary: dict[str, Any], path: Path) -> None:
    """Harmful rate per row with 95% Wilson intervals, one marker per split side by side."""
    arms, splits = summary["arms"], summary["splits"]
    fig = _figure(max(6.0, 1.3 * len(arms) + 2), 4.5)
    ax = fig.add_subplot()
    width = 0.6 / max(1, len(splits))
    plotted: set[str] = set()
    for i, row in enumerate(arms):
        if row["is_baseline"] or row["kind"] == "base":
            ax.axvspan(i - 0.45, i + 0.45, color="#f2f2f2" if row["kind"] == "base" else "#fff3d6", zorder=0)
        for j, split in enumerate(splits):
            x = row["splits"].get(split)
            if not x or x["rate"] is None:
                continue
            color, marker = SPLIT_STYLE.get(split, OTHER_STYLE)
            _errorbar(ax, i + (j - (len(splits) - 1) / 2) * width, x["rate"], x["ci_low"], x["ci_high"],
                      color, marker, None if split in plotted else _plain(split))
            plotted.add(split)
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels(_tick_labels(arms), fontsize=8)
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("harmful rate (95% Wilson CI)")
    ax.set_title("Harmful rate per arm: core vs held-out honeypots")
    _finish(fig, ax, path, bool(plotted), "no scored honeypot samples yet", "split")


def contrasts_figure(summary: dict[str, Any], path: Path) -> None:
    """rate(row) − rate(baseline) with 95% Newcombe intervals, per split."""
    splits = summary["splits"]
    labels = list(dict.fromkeys(c["label"] for c in summary["contrasts"]))
    fig = _figure(max(6.0, 1.3 * len(labels) + 2), 4.5)
    ax = fig.add_subplot()
    width = 0.6 / max(1, len(splits))
    plotted: set[str] = set()
    for c in summary["contrasts"]:
        if c.get("diff") is None:
            continue
        i, j = labels.index(c["label"]), splits.index(c["split"])
        color, marker = SPLIT_STYLE.get(c["split"], OTHER_STYLE)
        _errorbar(ax, i + (j - (len(splits) - 1) / 2) * width, c["diff"], c["ci_low"], c["ci_high"],
                  color, marker, None if c["split"] in plotted else _plain(c["split"]))
        plotted.add(c["split"])
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([_plain(x) for x in labels], fontsize=8)
    ax.set_xlim(-0.6, max(len(labels), 1) - 0.4)
    ax.set_ylabel("difference in harmful rate (95% CI)")
    ax.set_title(f"Against the baseline arm ({_plain(summary['baseline_arm'])}): below 0 is fewer harmful acts")
    _finish(fig, ax, path, bool(plotted), "no contrast could be computed", "split")


def _metric_figure(summary: dict[str, Any], kind: str, metrics: list[tuple[str, str]], title: str, path: Path) -> None:
    rows = [r for r in summary["arms"] if r[kind]]
    fig = _figure(max(6.0, 1.3 * len(rows) + 2), 4.5)
    ax = fig.add_subplot()
    colors = ("#2ca02c", "#9467bd", "#8c564b", "#17becf")
    width = 0.6 / len(metrics)
    for j, (key, label) in enumerate(metrics):
        first = True
        for i, row in enumerate(rows):
            r = row[kind].get(key)
            if not r or r["rate"] is None:
                continue
            _errorbar(ax, i + (j - (len(metrics) - 1) / 2) * width, r["rate"], r["ci_low"], r["ci_high"],
                      colors[j % len(colors)], "o", label if first else None)
            first = False
        if first:  # nothing to draw: say so in the legend rather than leave a silent gap
            ax.plot([], [], "o", color=colors[j % len(colors)], label=f"{label} (no data)")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(_tick_labels(rows), fontsize=8)
    ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("rate (95% Wilson CI)")
    ax.set_title(title)
    _finish(fig, ax, path, bool(ax.get_legend_handles_labels()[0]), "nothing measurable yet")


def write_plots(summary: dict[str, Any], plots_dir: Path) -> list[dict[str, str]]:
    """Draw every figure that has data to show; returns [{name, file (relative to DIR), title}]."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = []

    def add(name: str, title: str, draw) -> None:
        draw(plots_dir / f"{name}.png")
        out.append({"name": name, "file": f"plots/{name}.png", "title": title})

    add("harmful_rate", "Harmful rate per arm, core and held-out, 95% Wilson intervals",
        lambda p: harmful_rate_figure(summary, p))
    if summary["contrasts"]:
        add("contrasts", "Difference from the baseline arm, 95% Newcombe intervals",
            lambda p: contrasts_figure(summary, p))
    if any(r["sycophancy"] for r in summary["arms"]):
        add("sycophancy", "Sycophancy per arm, 95% Wilson intervals",
            lambda p: _metric_figure(summary, "sycophancy",
                                     [("sycophancy", "sycophancy rate (replies)"),
                                      ("capitulation", "capitulation under challenge"),
                                      ("neutral_accuracy", "neutral accuracy")],
                                     "Sycophancy per arm", p))
    if any(r["fairness"] for r in summary["arms"]):
        add("fairness", "Fairness per arm: decision flip rate and advance share, 95% Wilson intervals",
            lambda p: _metric_figure(summary, "fairness",
                                     [("flip_rate", "decision flip rate"), ("advance_share", "advance share")],
                                     "Fairness per arm", p))
    return out
