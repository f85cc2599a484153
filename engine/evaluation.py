"""Retrieval quality suites over the shared data sets (`imgsearch eval SUITE`).

Each suite builds a fresh index (a temporary data dir unless `settings.data_dir` was set
explicitly) with the configured enrichers, runs its queries through `run_search` (never recorded
as impressions) and returns one JSON-ready dict: suite, queries, metrics, index, legs, seconds.

Suites: imagenette (similar-image P@10/mAP@10), flickr8k (caption -> image Recall@k/MRR),
sroie (receipt fields -> receipt), minicoco (label filters and label counts against ground truth),
near-duplicates (altered uploads -> original).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance

from engine.demo import default_shared
from engine.documents import content_id
from engine.engine import Engine
from engine.errors import ImgSearchError
from engine.filters import TermFilter
from engine.ingest import Source, ingest_sources
from engine.search import SearchRequest, run_search
from engine.settings import Settings
from ranking.metrics import average_precision_at_k, precision_at_k, recall_at_k, reciprocal_rank

DEFAULT_DATA_ROOT = default_shared()  # ../shared/data beside the checkout, as for the demo


@dataclass
class Outcome:
    """What a suite measured: number of queries, metric means and the legs its queries used."""

    queries: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    legs: set[str] = field(default_factory=set)


Suite = Callable[[Engine, Path, "int | None", bool], Outcome]


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return round(sum(items) / len(items), 4) if items else 0.0


def _index(engine: Engine, paths: list[Path], progress: bool) -> dict[Path, str]:
    """Ingest files (no manifest: captions never reach the index); returns path -> document id."""
    ids = {p: content_id(p.read_bytes()) for p in paths}
    ingest_sources(engine, (Source(str(p)) for p in paths), total=len(paths), progress=progress)
    return ids


def _ask(engine: Engine, out: Outcome, request: SearchRequest) -> list[str]:
    """Run one unrecorded query; returns the ranked ids and notes the legs it used."""
    request.record = False
    response = run_search(engine, request)
    out.legs.update(response.legs)
    out.queries += 1
    return [h.id for h in response.hits]


def _spread(items: list[Any], n: int) -> list[Any]:
    """n items evenly spaced over the list (all of it when n >= len)."""
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _imagenette_files(root: Path, per_class: int | None) -> dict[str, list[Path]]:
    folder = root / "imagenette-val"
    return {
        d.name: _spread(sorted(d.glob("*.JPEG")), per_class or 10**9) for d in sorted(folder.iterdir()) if d.is_dir()
    }


def imagenette(engine: Engine, root: Path, limit: int | None, progress: bool) -> Outcome:
    """Similar-image search, leave-one-out: relevant = the other images of the query's class."""
    per_class = None if limit is None else max(10, math.ceil(limit * 5 / 10))
    by_class = _imagenette_files(root, per_class)
    ids = _index(engine, [p for ps in by_class.values() for p in ps], progress)
    members = {c: {ids[p] for p in ps} for c, ps in by_class.items()}
    # Round-robin over classes so a small limit still covers every class.
    order = [p for group in zip(*by_class.values(), strict=False) for p in group]
    order += [p for ps in by_class.values() for p in ps if p not in set(order)]
    queries = order if limit is None else order[:limit]
    out = Outcome()
    p10, ap10 = [], []
    for path in queries:
        relevant = members[path.parent.name] - {ids[path]}
        ranked = _ask(engine, out, SearchRequest(like=ids[path], k=10))
        p10.append(precision_at_k(ranked, relevant, 10))
        ap10.append(average_precision_at_k(ranked, relevant, 10))
    out.metrics = {"P@10": _mean(p10), "mAP@10": _mean(ap10), "chance_P@10": round(1 / len(by_class), 4)}
    return out


def _recall_metrics(runs: list[tuple[list[str], set[str]]]) -> dict[str, float]:
    return {
        "R@1": _mean(recall_at_k(r, rel, 1) for r, rel in runs),
        "R@5": _mean(recall_at_k(r, rel, 5) for r, rel in runs),
        "R@10": _mean(recall_at_k(r, rel, 10) for r, rel in runs),
        "MRR": _mean(reciprocal_rank(r, rel) for r, rel in runs),
    }


def flickr8k(engine: Engine, root: Path, limit: int | None, progress: bool) -> Outcome:
    """Caption -> image: each caption is a text query, its image the one relevant hit."""
    folder = root / "flickr8k-1k"
    captions: dict[str, list[str]] = defaultdict(list)
    with (folder / "captions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            captions[row["image"]].append(row["caption"].strip())
    names = sorted(n for n in captions if (folder / "images" / n).exists())
    indexed = names if limit is None else _spread(names, min(len(names), limit * 5))
    ids = _index(engine, [folder / "images" / n for n in indexed], progress)
    if limit is None:
        pairs = [(n, c) for n in indexed for c in captions[n]]
    else:
        pairs = [(n, captions[n][0]) for n in _spread(indexed, limit)]
    out = Outcome()
    runs = [(_ask(engine, out, SearchRequest(text=c, k=10)), {ids[folder / "images" / n]}) for n, c in pairs]
    out.metrics = _recall_metrics(runs)
    return out


_PARENS = re.compile(r"\([^)]*\)")
_NOISE = re.compile(r"\b(SDN|BHD)\b")


def normalise_company(name: str) -> str:
    """Upper case, without parenthesised parts, SDN/BHD and punctuation (for same-company matching)."""
    text = _NOISE.sub(" ", _PARENS.sub(" ", name.upper()))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def _address_line(receipt: Path, address: str) -> str:
    """The longest transcribed line of the receipt that is part of its address (else the address)."""
    box = receipt.parent.parent / "box" / f"{receipt.stem}.csv"
    lines: list[str] = []
    if box.exists():
        for raw in box.read_text(encoding="utf-8", errors="replace").splitlines():
            text = raw.split(",", 8)[-1].strip()
            if len(text) >= 8 and text.upper() in address.upper():
                lines.append(text)
    return max(lines, key=len) if lines else address


def sroie(engine: Engine, root: Path, limit: int | None, progress: bool) -> Outcome:
    """Receipt fields -> receipt: company, "<total> <date>" and one address line per receipt."""
    folder = root / "sroie-100"
    images = sorted((folder / "img").glob("*.jpg"))
    if limit is not None:
        images = images[: min(len(images), max(10, math.ceil(limit / 3)))]
    ids = _index(engine, images, progress)
    keys = {p: json.loads((folder / "key" / f"{p.stem}.json").read_text(encoding="utf-8")) for p in images}
    by_company: dict[str, set[str]] = defaultdict(set)
    for p, key in keys.items():
        by_company[normalise_company(key.get("company", ""))].add(ids[p])
    asks: list[tuple[str, str, set[str]]] = []
    for p, key in keys.items():
        if key.get("company"):
            asks.append(("company", key["company"], by_company[normalise_company(key["company"])]))
        if key.get("total") or key.get("date"):
            asks.append(("total_date", f"{key.get('total', '')} {key.get('date', '')}".strip(), {ids[p]}))
        if key.get("address"):
            asks.append(("address", _address_line(p, key["address"]), {ids[p]}))
    if limit is not None:
        asks = asks[:limit]
    out = Outcome()
    runs: dict[str, list[tuple[list[str], set[str]]]] = defaultdict(list)
    for kind, text, relevant in asks:
        runs[kind].append((_ask(engine, out, SearchRequest(text=text, k=10)), relevant))
    every = [r for rs in runs.values() for r in rs]
    out.metrics = {
        "R@1": _mean(recall_at_k(r, rel, 1) > 0 for r, rel in every),
        "MRR": _mean(reciprocal_rank(r, rel) for r, rel in every),
        "by_type": {
            kind: {
                "R@1": _mean(recall_at_k(r, rel, 1) > 0 for r, rel in rs),
                "MRR": _mean(reciprocal_rank(r, rel) for r, rel in rs),
            }
            for kind, rs in sorted(runs.items())
        },
    }
    return out


def minicoco(engine: Engine, root: Path, limit: int | None, progress: bool) -> Outcome:
    """`label=<cat>` filters and per-image label counts against the COCO ground truth."""
    folder = root / "minicoco-40"
    truth: dict[str, dict[str, int]] = {}
    names: dict[int, str] = {}
    for split in ("train", "val"):
        data = json.loads((folder / "labels" / f"{split}.json").read_text(encoding="utf-8"))
        names.update({c["id"]: c["name"] for c in data["categories"]})
        files = {im["id"]: im["file_name"] for im in data["images"]}
        for im in data["images"]:
            truth.setdefault(im["file_name"], {})
        for ann in data["annotations"]:
            counts = truth[files[ann["image_id"]]]
            cat = names[ann["category_id"]]
            counts[cat] = counts.get(cat, 0) + 1
    files_sorted = sorted(f for f in truth if (folder / "images" / f).exists())
    chosen = files_sorted if limit is None else files_sorted[:limit]
    ids = _index(engine, [folder / "images" / f for f in chosen], progress)
    by_id = {ids[folder / "images" / f]: truth[f] for f in chosen}
    out = Outcome()
    per_label: dict[str, dict[str, float]] = {}
    for cat in sorted(set(names.values())):
        request = SearchRequest(filters=[TermFilter("label", (cat,))], k=min(len(by_id), 1000) or 1)
        found = set(_ask(engine, out, request))
        relevant = {i for i, counts in by_id.items() if counts.get(cat)}
        right = len(found & relevant)
        per_label[cat] = {
            "precision": round(right / len(found), 4) if found else 0.0,
            "recall": round(right / len(relevant), 4) if relevant else 0.0,
        }
    docs = engine.store.get(list(by_id))
    errors: dict[str, list[int]] = defaultdict(list)
    for doc_id, counts in by_id.items():
        predicted = {lb.name: lb.count for lb in docs[doc_id].labels} if doc_id in docs else {}
        for cat in sorted(set(names.values())):
            errors[cat].append(abs(predicted.get(cat, 0) - counts.get(cat, 0)))
    out.metrics = {
        "precision": _mean(v["precision"] for v in per_label.values()),
        "recall": _mean(v["recall"] for v in per_label.values()),
        "by_label": per_label,
        "count_mae": {cat: _mean(map(float, errs)) for cat, errs in sorted(errors.items())},
        "images": len(by_id),
    }
    return out


def _encode(image: Image.Image, **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", **{"quality": 90, **save})
    return buffer.getvalue()


def _overlay(image: Image.Image) -> Image.Image:
    copy = image.copy()
    draw = ImageDraw.Draw(copy)
    draw.rectangle((4, 4, 4 + copy.width // 3, 18), fill=(255, 255, 255))
    draw.text((6, 6), "(c) imgsearch", fill=(0, 0, 0))
    return copy


ALTERATIONS: dict[str, Callable[[Image.Image], bytes]] = {
    "crop90": lambda im: _encode(
        im.crop((im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20))
    ),
    "resize50": lambda im: _encode(im.resize((max(1, im.width // 2), max(1, im.height // 2)))),
    "jpeg30": lambda im: _encode(im, quality=30),
    "brighter30": lambda im: _encode(ImageEnhance.Brightness(im).enhance(1.3)),
    "text": lambda im: _encode(_overlay(im)),
}


def near_duplicates(engine: Engine, root: Path, limit: int | None, progress: bool) -> Outcome:
    """Altered copies (crop, resize, JPEG, brightness, text) uploaded as queries; relevant = the original."""
    files = [p for ps in _imagenette_files(root, None).values() for p in ps]
    originals = _spread(files, 200 if limit is None else max(1, math.ceil(limit / len(ALTERATIONS))))
    distractors = [p for p in _spread(files, len(originals) * 5) if p not in set(originals)]
    ids = _index(engine, originals + distractors[: len(originals) * 3], progress)
    asks = [(p, kind) for p in originals for kind in ALTERATIONS]
    if limit is not None:
        asks = asks[:limit]
    out = Outcome()
    hits: dict[str, list[float]] = defaultdict(list)
    for path, kind in asks:
        with Image.open(path) as im:
            data = ALTERATIONS[kind](im.convert("RGB"))
        ranked = _ask(engine, out, SearchRequest(image=data, k=10))
        hits[kind].append(recall_at_k(ranked, {ids[path]}, 1))
    out.metrics = {
        "R@1": _mean(v for vs in hits.values() for v in vs),
        "by_alteration": {kind: {"R@1": _mean(vs)} for kind, vs in hits.items()},
    }
    return out


SUITES: dict[str, Suite] = {
    "imagenette": imagenette,
    "flickr8k": flickr8k,
    "sroie": sroie,
    "minicoco": minicoco,
    "near-duplicates": near_duplicates,
}
_NEEDS = {"flickr8k": "flickr8k-1k", "sroie": "sroie-100", "minicoco": "minicoco-40"}  # others: imagenette-val


def run_suite(
    name: str, *, settings: Settings, data_root: Path | None = None, limit: int | None = None, progress: bool = False
) -> dict[str, Any]:
    """Build a fresh index, run suite `name` (at most `limit` queries) and return its report dict.

    Raises ValueError for an unknown suite and ImgSearchError when the suite's data is missing.
    """
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of queries, got {limit}")
    root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOT
    needed = root / _NEEDS.get(name, "imagenette-val")
    if not needed.exists():
        raise ImgSearchError(f"shared data {needed} is missing: suite {name!r} needs it (give --data-root)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"imgsearch-eval-{name}-") as tmp:
        data_dir = settings.data_dir if "data_dir" in settings.model_fields_set else Path(tmp)
        engine = Engine.open(settings.model_copy(update={"data_dir": data_dir}))
        try:
            for enricher in engine.enrichers:
                engine.enricher(enricher.name)  # load now, so `unavailable` is known before indexing
            outcome = SUITES[name](engine, root, limit, progress)
            index = {
                "documents": engine.store.count(),
                "enrichers": [e.name for e in engine.active_enrichers()],
                "unavailable": sorted(engine.unavailable),
                "vectors": {f: ix.describe() for f, ix in sorted(engine.indexes.items())},
            }
        finally:
            engine.close()
    return {
        "suite": name,
        "queries": outcome.queries,
        "metrics": outcome.metrics,
        "index": index,
        "legs": sorted(outcome.legs),
        "seconds": round(time.perf_counter() - started, 3),
    }


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable table of a `run_suite` report."""
    index = report["index"]
    lines = [
        f"suite {report['suite']}: {report['queries']} queries over {index['documents']} images "
        f"in {report['seconds']:.1f}s",
        f"enrichers: {', '.join(index['enrichers']) or '-'}"
        + (f" (unavailable: {', '.join(index['unavailable'])})" if index["unavailable"] else ""),
        f"legs: {', '.join(report['legs']) or '-'}",
    ]

    def walk(metrics: dict[str, Any], prefix: str) -> None:
        for key, value in metrics.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                lines.append(f"  {prefix + key:<32} {value}")

    walk(report["metrics"], "")
    return "\n".join(lines)
