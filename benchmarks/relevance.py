"""Relevance: every `imgsearch eval` suite at full size, under two enricher configurations.

  * "colour + pHash": the cheap enrichers only (no models);
  * "default": the engine's default enricher list (colour, pHash, OCR, objects, CLIP) with the
    detector pointed at the shared OpenVINO export. CLIP weights cannot be fetched on an offline
    machine: the report then lists clip as unavailable, and the runs are labelled that way.

Each suite builds a fresh index in a temporary directory and runs its queries unrecorded (see
`engine/evaluation.py` for what each suite asks and measures). The table shows the headline metrics;
the JSON reports (index configuration, legs used, every metric) go to `docs/benchmarks/relevance.json`.

    .venv/bin/python -m benchmarks.relevance [--suites imagenette sroie] [--configs cheap default]
                                             [--limit N] [--no-markdown] [--no-charts]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.charts import CHART_DIR, chart, link
from benchmarks.report import SHARED_MODEL, table
from engine.evaluation import SUITES, run_suite
from engine.settings import Settings

CONFIGS: dict[str, dict[str, Any]] = {
    "cheap": {"enrichers": ["colour", "phash"]},
    "default": {"enrichers": Settings.model_fields["enrichers"].get_default(call_default_factory=True)},
}
LABELS = {"cheap": "colour + pHash", "default": "default enrichers"}

# Per suite, the metrics shown in the table (first one is charted).
HEADLINE: dict[str, list[str]] = {
    "imagenette": ["P@10", "mAP@10"],
    "flickr8k": ["R@1", "R@5", "R@10", "MRR"],
    "sroie": ["R@1", "MRR"],
    "minicoco": ["precision", "recall"],
    "near-duplicates": ["R@1"],
}


def settings_for(config: str) -> Settings:
    overrides: dict[str, Any] = dict(CONFIGS[config])
    if config != "cheap" and SHARED_MODEL.exists():
        overrides["objects"] = {"model": str(SHARED_MODEL)}
    return Settings(**overrides)


def detail(suite: str, metrics: dict[str, Any]) -> str:
    """Per-type breakdowns worth a glance (SROIE by query type, near-duplicates by alteration)."""
    if suite == "sroie":
        return ", ".join(f"{k} R@1 {v['R@1']:.2f}" for k, v in metrics.get("by_type", {}).items())
    if suite == "near-duplicates":
        return ", ".join(f"{k} {v['R@1']:.2f}" for k, v in metrics.get("by_alteration", {}).items())
    if suite == "imagenette":
        return f"chance P@10 {metrics.get('chance_P@10', 0):.2f}"
    return ""


def row(config: str, rep: dict[str, Any]) -> list[object]:
    index = rep["index"]
    metrics = rep["metrics"]
    shown = ", ".join(f"{m} **{metrics[m]:.3f}**" for m in HEADLINE[rep["suite"]] if m in metrics)
    enrichers = ", ".join(index["enrichers"]) or "-"
    if index["unavailable"]:
        enrichers += f" (unavailable: {', '.join(index['unavailable'])})"
    return [
        rep["suite"],
        LABELS[config],
        enrichers,
        ", ".join(rep["legs"]) or "-",
        rep["queries"],
        index["documents"],
        shown,
        detail(rep["suite"], metrics),
        f"{rep['seconds']:.0f}",
    ]


def draw(results: dict[str, dict[str, dict[str, Any]]], chart_dir: Path) -> None:
    suites = [s for s in HEADLINE if any(s in results[c] for c in results)]
    configs = list(results)
    with chart("relevance", "Headline metric per suite (higher is better)", width=8, chart_dir=chart_dir) as (
        _,
        ax,
    ):
        width = 0.8 / max(1, len(configs))
        for i, config in enumerate(configs):
            xs, ys = [], []
            for j, suite in enumerate(suites):
                rep = results[config].get(suite)
                if rep is not None:
                    xs.append(j + i * width)
                    ys.append(rep["metrics"].get(HEADLINE[suite][0], 0.0))
            bars = ax.bar(xs, ys, width, label=LABELS[config])
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks([j + width * (len(configs) - 1) / 2 for j in range(len(suites))])
        ax.set_xticklabels([f"{s}\n{HEADLINE[s][0]}" for s in suites])
        ax.set_ylim(0, 1.05)
        ax.legend()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=list(SUITES))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--limit", type=int, default=None, help="at most this many queries per suite (smoke run)")
    parser.add_argument("--data-root", type=Path, default=None, help="shared data sets (default: ../shared/data)")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG chart")
    parser.add_argument("--chart-dir", type=Path, default=CHART_DIR, help="where the chart goes")
    report.add_markdown_args(parser)
    args = parser.parse_args(argv)

    results: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in args.configs}
    rows = []
    for suite in args.suites:
        for config in args.configs:
            started = time.perf_counter()
            print(f"== {suite} / {LABELS[config]}", flush=True)
            rep = run_suite(
                suite, settings=settings_for(config), data_root=args.data_root, limit=args.limit, progress=True
            )
            results[config][suite] = rep
            rows.append(row(config, rep))
            print(f"   {json.dumps(rep['metrics'])[:300]}  ({time.perf_counter() - started:.0f}s)", flush=True)

    headers = ["suite", "config", "enrichers", "legs used", "queries", "images", "metrics", "detail", "s"]
    print()
    print(table(headers, rows))
    if not args.no_charts:
        draw(results, args.chart_dir)
        args.chart_dir.mkdir(parents=True, exist_ok=True)
        (args.chart_dir / "relevance.json").write_text(json.dumps(results, indent=1) + "\n")
    limit_note = f"at most {args.limit} queries per suite" if args.limit else "every query of every suite"
    body = "\n".join(
        [
            "## Relevance (`imgsearch eval`, full suites)",
            "",
            f"Measured on {report.machine().one_line()}; {limit_note}. Reproduce with "
            "`.venv/bin/python -m benchmarks.relevance`; one suite with `imgsearch eval SUITE --json`.",
            "Every suite builds a fresh index of its images and runs its queries unrecorded. "
            f'"{LABELS["cheap"]}" runs no models; "{LABELS["default"]}" is the engine\'s default enricher list '
            "with the detector at the shared OpenVINO export. Enrichers that could not load are listed as "
            "unavailable: their legs did not run, and the figures are for the engine without them.",
            "",
            table(headers, rows),
            "",
            link("relevance", "headline relevance metric per suite and configuration")
            + "  \nFull reports (index configuration, per-label and per-type metrics): "
            "[docs/benchmarks/relevance.json](docs/benchmarks/relevance.json).",
        ]
    )
    report.write_report("relevance", body, args)


if __name__ == "__main__":
    main()
