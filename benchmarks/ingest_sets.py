"""Ingest on every shared set: images/s end to end and per stage, with the engine's default enrichers.

For each set (Imagenette val, Flickr8k-1k, SROIE-100, minicoco-40) the whole folder is ingested into a
fresh temporary data dir with the default enricher list (colour, pHash, OCR with its text gate,
objects at the shared OpenVINO export, CLIP: unavailable offline, then listed as such), pipelined,
2 workers, batch 64. Files are read once beforehand so every run sees a warm page cache.

Columns: end-to-end images/s (wall clock of `ingest_paths`, open and final save excluded); the engine's
stage seconds (`IngestReport.stage_seconds`: with pipelining, read + decode overlap enrichment, so the
stages sum to more than the wall time); and per enricher the wall seconds it spent on the set
(`Engine.enrich_seconds`) as ms/image and images/s. OCR's rate counts every image, including those its
text gate skipped, so sets of photos (few with text) run OCR far faster than the receipts.

    .venv/bin/python -m benchmarks.ingest_sets [--sets imagenette-val sroie-100] [--limit N] [--no-markdown]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.charts import CHART_DIR, chart, link
from benchmarks.report import SHARED_DATA, SHARED_MODEL, add_markdown_args, fmt, machine, table, write_report
from engine.engine import Engine
from engine.ingest import collect, ingest_paths
from engine.settings import Settings

SETS = {
    "imagenette-val": "imagenette-val",
    "flickr8k-1k": "flickr8k-1k/images",
    "sroie-100": "sroie-100/img",
    "minicoco-40": "minicoco-40/images",
}
STAGES = ["read", "decode", "enrich", "store"]


DEFAULT_ENRICHERS: list[str] = Settings.model_fields["enrichers"].get_default(call_default_factory=True)


def run_set(name: str, files: list[Path], workers: int, batch: int, enrichers: list[str]) -> dict[str, Any]:
    for path in files:  # warm the page cache
        path.read_bytes()
    with tempfile.TemporaryDirectory(prefix=f"imgsearch-bench-{name}-") as tmp:
        overrides: dict[str, Any] = {"data_dir": Path(tmp), "workers": workers, "batch_size": batch}
        overrides["enrichers"] = enrichers
        if SHARED_MODEL.exists():
            overrides["objects"] = {"model": str(SHARED_MODEL)}
        with Engine.open(Settings(**overrides)) as engine:
            for enricher in engine.enrichers:
                engine.enricher(enricher.name)  # load models before the clock starts
            started = time.perf_counter()
            report = ingest_paths(engine, files, progress=True)
            wall = time.perf_counter() - started
            return {
                "set": name,
                "images": report.seen,
                "failed": len(report.failed),
                "wall": wall,
                "stages": dict(report.stage_seconds),
                "enrichers": dict(engine.enrich_seconds),
                "unavailable": sorted(engine.unavailable),
            }


def draw(results: list[dict[str, Any]], chart_dir: Path) -> None:
    names = sorted({e for r in results for e in r["enrichers"]})
    with chart("ingest_sets", "Enricher time per image on each shared set (ms, stacked)", chart_dir=chart_dir) as (
        _,
        ax,
    ):
        bottoms = [0.0] * len(results)
        for enricher in names:
            heights = [1000 * r["enrichers"].get(enricher, 0.0) / max(1, r["images"]) for r in results]
            ax.bar([r["set"] for r in results], heights, bottom=bottoms, label=enricher)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        walls = [1000 * r["wall"] / max(1, r["images"]) for r in results]
        ax.plot([r["set"] for r in results], walls, "k_", markersize=30, mew=2, label="end to end (wall)")
        ax.set_ylabel("ms per image")
        ax.legend()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--data-root", type=Path, default=SHARED_DATA)
    parser.add_argument("--limit", type=int, default=0, help="first N images of each set (0 = all)")
    parser.add_argument("--enrichers", nargs="+", default=DEFAULT_ENRICHERS, help="default: %(default)s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--chart-dir", type=Path, default=CHART_DIR)
    add_markdown_args(parser)
    args = parser.parse_args(argv)
    machine()

    results = []
    for name in args.sets:
        files, _ = collect([args.data_root / SETS[name]])
        if args.limit:
            files = files[: args.limit]
        if not files:
            raise SystemExit(f"no images under {args.data_root / SETS[name]}: give --data-root")
        print(f"== {name}: {len(files)} images", flush=True)
        results.append(run_set(name, files, args.workers, args.batch_size, args.enrichers))

    rows = []
    for r in results:
        n = max(1, r["images"])
        rows.append(
            [
                r["set"],
                r["images"],
                r["failed"],
                f"**{fmt(r['images'] / r['wall'], 1)}**",
                fmt(1000 * r["wall"] / n, 1),
                *[fmt(r["stages"].get(s, 0.0), 1) for s in STAGES],
                ", ".join(
                    f"{e} {fmt(1000 * t / n, 1)} ms ({fmt(n / max(t, 1e-9), 0)}/s)" for e, t in r["enrichers"].items()
                ),
            ]
        )
    headers = ["set", "images", "failed", "images/s", "ms/image", *[f"{s} s" for s in STAGES], "per enricher"]
    print(table(headers, rows))
    unavailable = sorted({u for r in results for u in r["unavailable"]})
    if not args.no_charts:
        draw(results, args.chart_dir)
    body = "\n".join(
        [
            "## Ingest on the shared sets (default enrichers)",
            "",
            f"Measured on {machine().one_line()}. Pipelined ingest, {args.workers} workers, batch "
            f"{args.batch_size}, enrichers {', '.join(args.enrichers)} (OCR with its text gate; objects: the shared "
            "OpenVINO yolo11n int8)"
            + (f"; unavailable here, so not run: {', '.join(unavailable)}" if unavailable else "")
            + ". Stage columns are seconds summed over batches (read + decode overlap enrichment). "
            "Reproduce: `.venv/bin/python -m benchmarks.ingest_sets`.",
            "",
            table(headers, rows),
            "",
            link("ingest_sets", "enricher milliseconds per image on each shared set"),
        ]
    )
    write_report("ingest_sets", body, args)


if __name__ == "__main__":
    main()
