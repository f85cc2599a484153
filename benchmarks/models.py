"""Model enrichers on the shared data, 2 cores: OCR word recall and the text gate (SROIE-100 and photos),
detector precision/recall per class (minicoco-40), similar-image P@10 on Imagenette val (leave-one-out)
for the colour vector, the detector vector and both fused, and ingest images/s per stage with the full
enricher set, pipelining on and off.

    .venv/bin/python -m benchmarks.models [--only ocr,detector,similar,ingest] [--no-markdown]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.report import SHARED_DATA, SHARED_MODEL, add_markdown_args, fmt, table, write_report
from engine.documents import DecodedImage
from engine.engine import Engine
from engine.images import decode_image
from engine.ingest import collect, ingest_paths
from engine.settings import Settings
from enrichers.colour import ColourEnricher
from enrichers.objects import ObjectsEnricher
from enrichers.ocr import OcrEnricher, text_likelihood
from ranking.fusion import LegHit, rrf

DATA, MODEL = SHARED_DATA, SHARED_MODEL
WORD = re.compile(r"[a-z0-9]{2,}")


def load(path: Path) -> DecodedImage:
    return decode_image(path.read_bytes(), max_pixels=80_000_000)


def ocr_section(limit: int) -> str:
    images = sorted((DATA / "sroie-100" / "img").glob("*.jpg"))[:limit]
    rows, per_variant = [], {}
    for binarize in (False, True):
        ocr = OcrEnricher(gate=False, binarize=binarize)
        ocr.load()
        recalls, times = [], []
        for path in images:
            truth = set()
            with open(DATA / "sroie-100" / "box" / (path.stem + ".csv"), encoding="utf-8", errors="replace") as fh:
                for row in csv.reader(fh):
                    truth.update(WORD.findall(",".join(row[8:]).lower()))
            image = load(path)
            started = time.perf_counter()
            found = set(WORD.findall(ocr.read(image.pixels).text.lower()))
            times.append((time.perf_counter() - started) * 1000)
            recalls.append(len(truth & found) / max(1, len(truth)))
        per_variant[binarize] = (statistics.mean(recalls), statistics.median(times))
        rows.append(
            [
                "Otsu binarised" if binarize else "grey (default)",
                len(images),
                fmt(statistics.mean(recalls), 3),
                fmt(statistics.median(times), 0),
                fmt(max(times), 0),
            ]
        )
    body = [
        "### OCR word recall on SROIE (Tesseract 5, `--oem 1 --psm 3`, min confidence 60)",
        "",
        "Recall: share of ground-truth words (2+ alphanumerics, from `box/*.csv`) that OCR found, mean "
        "over receipts. Both preprocessings measured in the same run.",
        "",
        table(["preprocessing", "receipts", "word recall", "ms/image p50", "ms/image max"], rows),
    ]
    return "\n".join(body)


def gate_section(per_set: int) -> str:
    sets = {
        "sroie": sorted((DATA / "sroie-100" / "img").glob("*.jpg"))[:per_set],
        "imagenette": sorted((DATA / "imagenette-val").rglob("*.JPEG"))[:: max(1, 3925 // per_set)][:per_set],
        "flickr8k": sorted((DATA / "flickr8k-1k" / "images").glob("*.jpg"))[:per_set],
        "samples": sorted((DATA / "samples").glob("*")),
    }
    ocr = OcrEnricher(gate=False)
    ocr.load()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # tp fp fn tn
    gate_ms, ocr_ms = [], []
    for name, paths in sets.items():
        for path in paths:
            image = load(path)
            started = time.perf_counter()
            passes = text_likelihood(image.pixels) >= 3
            gate_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            words = [w for w in ocr.read(image.pixels).words if sum(c.isalpha() for c in w.text) >= 3]
            ocr_ms.append((time.perf_counter() - started) * 1000)
            has_text = len(words) >= 3
            counts[name][0 if passes and has_text else 1 if passes else 2 if has_text else 3] += 1
    rows = []
    total = [0, 0, 0, 0]
    for name, (tp, fp, fn, tn) in counts.items():
        total = [a + b for a, b in zip(total, (tp, fp, fn, tn), strict=True)]
        rows.append([name, tp + fp + fn + tn, tp + fn, tp, fp, fn])
    tp, fp, fn, tn = total
    rows.append(["all", sum(total), tp + fn, tp, fp, fn])
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    skipped = (fn + tn) / max(1, sum(total))
    return "\n".join(
        [
            "### OCR gate (skip images unlikely to contain text)",
            "",
            "Truth: full OCR finds at least 3 confident words of 3+ letters. The gate counts text-line-like "
            "regions (morphological gradient, Otsu, horizontal closing) and lets an image through at 3.",
            "",
            table(["set", "images", "with text", "gate passed & text", "passed, no text", "missed text"], rows),
            "",
            f"Precision {fmt(precision, 3)}, recall {fmt(recall, 3)}; the gate skips {fmt(100 * skipped, 1)}% of "
            f"images. Gate p50 {fmt(statistics.median(gate_ms), 1)} ms vs full OCR p50 "
            f"{fmt(statistics.median(ocr_ms), 0)} ms per image.",
        ]
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def detector_section() -> str:
    detector = ObjectsEnricher(model=str(MODEL))
    detector.load()
    truth: dict[str, set[str]] = defaultdict(set)
    boxes: dict[str, list[tuple[str, tuple[float, ...]]]] = defaultdict(list)
    for split in ("train", "val"):
        gt = json.loads((DATA / "minicoco-40" / "labels" / f"{split}.json").read_text())
        cats = {c["id"]: c["name"] for c in gt["categories"]}
        files = {i["id"]: (i["file_name"], i["width"], i["height"]) for i in gt["images"]}
        for ann in gt["annotations"]:
            name, w, h = files[ann["image_id"]]
            x, y, bw, bh = ann["bbox"]
            truth[name].add(cats[ann["category_id"]])
            boxes[name].append((cats[ann["category_id"]], (x / w, y / h, (x + bw) / w, (y + bh) / h)))
    names = sorted(truth)
    images = [load(DATA / "minicoco-40" / "images" / n) for n in names]
    times = []
    results = []
    for image in images:
        started = time.perf_counter()
        results.append(detector.enrich(image))
        times.append((time.perf_counter() - started) * 1000)
    rows = []
    for category in ("person", "car", "airplane"):
        predicted = {n for n, r in zip(names, results, strict=True) if category in {lb.name for lb in r.labels}}
        actual = {n for n in names if category in truth[n]}
        hits = found = n_pred = n_true = 0
        for name, result in zip(names, results, strict=True):
            pred = [(b.x1, b.y1, b.x2, b.y2) for lb in result.labels if lb.name == category for b in lb.boxes]
            gt_boxes = [g for c, g in boxes[name] if c == category]
            n_pred, n_true = n_pred + len(pred), n_true + len(gt_boxes)
            hits += sum(any(_iou(p, g) >= 0.5 for g in gt_boxes) for p in pred)
            found += sum(any(_iou(p, g) >= 0.5 for p in pred) for g in gt_boxes)
        rows.append(
            [
                category,
                len(actual),
                len(predicted),
                fmt(len(predicted & actual) / max(1, len(predicted)), 2),
                fmt(len(predicted & actual) / max(1, len(actual)), 2),
                n_true,
                n_pred,
                fmt(hits / max(1, n_pred), 2),
                fmt(found / max(1, n_true), 2),
            ]
        )
    return "\n".join(
        [
            "### Detector on minicoco-40 (YOLO11n INT8 OpenVINO, confidence 0.25)",
            "",
            "Every minicoco image holds all three classes, so image-level precision is 1.00 by construction; the "
            "box-level columns (a box counts when IoU >= 0.5 with a ground-truth box of its class) are the "
            "informative ones. Small objects are missed, as DATA.md says.",
            "",
            table(
                [
                    "class",
                    "images with it",
                    "images predicted",
                    "image precision",
                    "image recall",
                    "true boxes",
                    "predicted boxes",
                    "box precision",
                    "box recall",
                ],
                rows,
            ),
            "",
            f"{fmt(statistics.median(times), 1)} ms/image p50 (batch 1, labels and the 256-d backbone vector "
            f"from one pass; {len(names)} images).",
        ]
    )


def precision_at_10(vectors: np.ndarray, labels: np.ndarray) -> tuple[float, list[list[int]]]:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    top = np.argsort(-scores, axis=1)[:, :200]
    p10 = float(np.mean([(labels[row[:10]] == labels[i]).mean() for i, row in enumerate(top)]))
    return p10, top.tolist()


def similar_section(limit: int) -> str:
    paths = sorted((DATA / "imagenette-val").rglob("*.JPEG"))[:: max(1, 3925 // limit)][:limit]
    labels = np.array([p.parent.name for p in paths])
    colour, detector = ColourEnricher(), ObjectsEnricher(model=str(MODEL))
    colour_vecs, detector_vecs = [], []
    for path in paths:
        image = load(path)
        colour_vecs.append(colour.enrich(image).histogram)
        features = detector.enrich(image).features
        assert features is not None
        detector_vecs.append(features)
    p_colour, top_colour = precision_at_10(np.stack(colour_vecs), labels)
    p_detector, top_detector = precision_at_10(np.stack(detector_vecs), labels)
    default = Settings().search.leg_weights
    rows = [["colour histogram (128-d)", "-", fmt(p_colour, 3)], ["detector backbone (256-d)", "-", fmt(p_detector, 3)]]
    for colour_weight in sorted({default.get("colour", 1.0), 0.15, 0.3, 0.6, 1.0}):
        weights = {"colour": colour_weight, "detector": default.get("detector", 1.0)}
        fused_p = []
        for i in range(len(paths)):
            legs = {
                "colour": [LegHit(str(j), 0.0) for j in top_colour[i]],
                "detector": [LegHit(str(j), 0.0) for j in top_detector[i]],
            }
            top = [int(h.id) for h in rrf(legs, k=60, weights=weights)[:10]]
            fused_p.append(float((labels[top] == labels[i]).mean()))
        marker = " (default)" if colour_weight == default.get("colour") else ""
        rows.append(
            [f"RRF fused, colour weight {colour_weight}{marker}", weights["detector"], fmt(statistics.mean(fused_p), 3)]
        )
    return "\n".join(
        [
            f"### Similar-image search on Imagenette val (leave-one-out, {len(paths)} images, 10 classes)",
            "",
            "A hit is relevant when it has the query's class; chance is 0.10. Exact cosine per leg, the engine's "
            "reciprocal rank fusion over each leg's top 200.",
            "",
            table(["signal", "detector weight", "P@10"], rows),
        ]
    )


def ingest_section(limit: int) -> str:
    files, _ = collect([DATA / "imagenette-val"])
    files = files[:: max(1, len(files) // limit)][:limit]
    rows = []
    for pipeline in (False, True, False, True):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                enrichers=["colour", "phash", "ocr", "objects"],
                objects={"model": str(MODEL)},
                pipeline=pipeline,
            )
            with Engine.open(settings) as engine:
                report = ingest_paths(engine, files)
                per_enricher = dict(engine.enrich_seconds)
        stages = report.stage_seconds
        rows.append(
            [
                "on" if pipeline else "off",
                len(files),
                fmt(report.seconds, 1),
                fmt(report.images_per_second, 1),
                fmt(stages.get("read", 0), 1),
                fmt(stages.get("decode", 0), 1),
                fmt(stages.get("enrich", 0), 1),
                fmt(stages.get("store", 0), 1),
                ", ".join(f"{n} {len(files) / max(t, 1e-9):,.0f}/s" for n, t in per_enricher.items()),
            ]
        )
    return "\n".join(
        [
            "### Ingest with the full enricher set (colour, pHash, OCR with gate, YOLO)",
            "",
            "Imagenette val sample, 2 workers, batch 64; runs alternate off/on/off/on in one process. Stage columns "
            "are seconds summed over batches (with pipelining, read+decode overlap enrichment, so they exceed the "
            "wall time).",
            "",
            table(
                [
                    "pipelining",
                    "images",
                    "seconds",
                    "images/s",
                    "read",
                    "decode",
                    "enrich",
                    "store",
                    "per enricher (images/s)",
                ],
                rows,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="ocr,gate,detector,similar,ingest")
    parser.add_argument("--ocr-limit", type=int, default=100)
    parser.add_argument("--gate-per-set", type=int, default=100)
    parser.add_argument("--similar-limit", type=int, default=3925)
    parser.add_argument("--ingest-limit", type=int, default=600)
    add_markdown_args(parser)
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    runs = {
        "ocr": lambda: ocr_section(args.ocr_limit),
        "gate": lambda: gate_section(args.gate_per_set),
        "detector": detector_section,
        "similar": lambda: similar_section(args.similar_limit),
        "ingest": lambda: ingest_section(args.ingest_limit),
    }
    for name, run in runs.items():
        if name in wanted:
            started = time.perf_counter()
            text = run()
            print(text, f"\n({name}: {time.perf_counter() - started:.0f}s)\n", flush=True)
            # each subsection owns its markers, so `--only X` rewrites X alone
            write_report(f"models_{name}", text, args)


if __name__ == "__main__":
    main()
