"""`imgsearch demo`: build a demo corpus with no download, index it,, run example queries, serve.

The corpus: photos that ship inside scikit-image, images generated here (coloured shapes
with known names), and, when `../shared/data` exists, Flickr8k
photos with their captions, an Imagenette sample labelled by class, and the sample images
(another location with `imgsearch demo --shared DIR`).
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from engine.engine import Engine
from engine.filters import parse_facets, parse_filters
from engine.ingest import ingest_paths
from engine.manifest import Manifest
from engine.search import SearchRequest, run_search
from engine.settings import Settings

SKIMAGE_PHOTOS: dict[str, tuple[str, str, list[str]]] = {
    "astronaut": (
        "Astronaut Eileen Collins",
        "portrait of an astronaut in an orange suit with a flag",
        ["person", "nasa"],
    ),
    "chelsea": ("Chelsea the cat", "a tabby cat looking sideways", ["cat", "animal", "pet"]),
    "coffee": ("Cup of coffee", "a red cup of coffee on a saucer with a spoon", ["coffee", "cup", "drink"]),
    "rocket": ("Rocket launch pad", "a rocket standing on its launch pad under a blue sky", ["rocket", "space"]),
    "stereo_motorcycle": ("Motorcycle", "a motorcycle standing in a workshop", ["motorcycle", "vehicle"]),
    "hubble_deep_field": ("Hubble deep field", "galaxies in deep space seen by Hubble", ["space", "galaxy"]),
    "immunohistochemistry": ("Tissue stain", "immunohistochemistry stained tissue sample", ["microscopy"]),
    "colorwheel": ("Colour wheel", "a wheel of all the hues", ["colour", "chart"]),
    "retina": ("Retina", "fundus photograph of a human retina", ["medical", "eye"]),
    "camera": ("Cameraman", "a man with a camera on a tripod, black and white", ["person", "camera"]),
    "coins": ("Greek coins", "old coins on a dark background", ["coins", "money"]),
    "moon": ("Moon surface", "craters on the surface of the moon", ["moon", "space"]),
    "page": ("Book page", "a page of printed text", ["text", "document"]),
    "text": ("Text sample", "printed text on a plain background", ["text"]),
    "clock": ("Clock", "a wall clock", ["clock"]),
    "brick": ("Brick wall", "a wall of bricks", ["texture", "wall"]),
    "grass": ("Grass", "a close view of grass", ["texture", "nature"]),
}
SHAPE_COLOURS = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 170, 60),
    "cyan": (40, 210, 220),
    "blue": (30, 70, 210),
    "purple": (130, 50, 180),
    "pink": (245, 150, 190),
    "brown": (120, 70, 30),
    "black": (15, 15, 15),
    "grey": (128, 128, 128),
    "white": (250, 250, 250),
}


@dataclass(slots=True)
class DemoQuery:
    title: str
    request: SearchRequest


def build_corpus(root: Path, *, shared: Path | None, imagenette_per_class: int = 30) -> tuple[list[Path], Manifest]:
    """Write the demo images and a manifest under `root`; returns the paths to ingest and the manifest."""
    root.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    inputs: list[Path] = []

    photos = root / "photos"
    photos.mkdir(exist_ok=True)
    try:
        import skimage.data as skdata

        for name, (title, caption, tags) in SKIMAGE_PHOTOS.items():
            target = photos / f"{name}.png"
            if not target.exists():
                loaded = getattr(skdata, name)()
                arr = np.asarray(loaded[0] if isinstance(loaded, tuple) else loaded)
                Image.fromarray(arr.astype(np.uint8)).save(target)
            rows.append(
                {
                    "path": str(target),
                    "title": title,
                    "caption": caption,
                    "tags": ";".join(tags),
                    "licence": "public domain / BSD (scikit-image)",
                    "source": "scikit-image",
                }
            )
    except ImportError:
        print("demo: scikit-image is not installed; skipping its sample photos", file=sys.stderr)
    inputs.append(photos)

    shapes = root / "shapes"
    shapes.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    for colour, rgb in SHAPE_COLOURS.items():
        for shape in ("circle", "square"):
            target = shapes / f"{colour}_{shape}.png"
            if not target.exists():
                background = (255, 255, 255) if colour not in ("white",) else (20, 20, 60)
                img = Image.new("RGB", (320, 240), background)
                draw = ImageDraw.Draw(img)
                x, y = int(rng.integers(20, 80)), int(rng.integers(10, 40))
                box = (x, y, x + 200, y + 190)
                (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=rgb)
                img.save(target)
            rows.append(
                {
                    "path": str(target),
                    "title": f"{colour} {shape}",
                    "tags": f"{colour};{shape};generated",
                    "licence": "CC0",
                    "source": "generated",
                }
            )
    inputs.append(shapes)

    if shared is not None and shared.is_dir():
        flickr = shared / "flickr8k-1k"
        if (flickr / "captions.csv").exists():
            with open(flickr / "captions.csv", newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    rows.append(
                        {
                            "path": str(flickr / "images" / row["image"]),
                            "caption": row["caption"],
                            "licence": "Flickr8k (research use)",
                            "source": "flickr8k",
                        }
                    )
            inputs.append(flickr / "images")
        imagenette = shared / "imagenette-val"
        if (imagenette / "classes.json").exists():
            classes = json.loads((imagenette / "classes.json").read_text())
            for wnid, name in classes.items():
                for path in sorted((imagenette / wnid).glob("*.JPEG"))[:imagenette_per_class]:
                    rows.append(
                        {
                            "path": str(path),
                            "title": name,
                            "tags": name,
                            "licence": "ImageNet (non-commercial research)",
                            "source": "imagenette",
                        }
                    )
                    inputs.append(path)
        samples = shared / "samples"
        if samples.is_dir():
            inputs.append(samples)
            rows.append(
                {
                    "path": str(samples / "bus.jpg"),
                    "title": "Bus in the street",
                    "tags": "bus;street",
                    "licence": "AGPL-3.0 (ultralytics asset)",
                    "source": "ultralytics",
                }
            )
            rows.append(
                {
                    "path": str(samples / "zidane.jpg"),
                    "title": "Two men in suits",
                    "tags": "person",
                    "licence": "AGPL-3.0 (ultralytics asset)",
                    "source": "ultralytics",
                }
            )

    manifest_path = root / "manifest.jsonl"
    manifest_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return inputs, Manifest.load(manifest_path)


def demo_queries(engine: Engine) -> list[DemoQuery]:
    """Keyword, colour, filtered, faceted and similar-image examples over the demo corpus."""
    queries = [
        DemoQuery(
            "keywords: 'dog running on grass'",
            SearchRequest(text="dog running on grass", k=5, facets=parse_facets(["source"])),
        ),
        DemoQuery("keywords: 'cat'", SearchRequest(text="cat", k=3)),
        DemoQuery("colour: 'red' (colour names are searchable words)", SearchRequest(text="red", k=5)),
        DemoQuery(
            "filter only: colour=blue, orientation=landscape, with facets",
            SearchRequest(
                filters=parse_filters(["colour=blue", "orientation=landscape"]),
                k=5,
                facets=parse_facets(["colour", "source", "format"]),
            ),
        ),
        DemoQuery(
            "filtered keywords: 'beach' with colour=blue and width>=300",
            SearchRequest(text="beach", filters=parse_filters(["colour=blue", "width>=300"]), k=5),
        ),
    ]
    anchor = engine.store.search_text("parachute", [], 1) or engine.store.search_text("rocket", [], 1)
    if anchor:
        queries.append(
            DemoQuery(
                f"similar images: like {anchor[0].id}",
                SearchRequest(like=anchor[0].id, k=5, facets=parse_facets(["source"])),
            )
        )
    return queries


def print_response(title: str, response: Any) -> None:
    print(f"\n== {title}")
    print(
        f"   {response.total}{'+' if response.total_relation == 'gte' else ''} results, legs {response.legs}, "
        f"{response.took_ms:.1f} ms"
    )
    for n, hit in enumerate(response.hits, start=1):
        doc = hit.document
        label = doc.title or (doc.caption.split(" | ")[0] if doc.caption else "")
        signals = ", ".join(f"{k}={v}" for k, v in hit.signals.items())
        print(f"   {n}. {Path(doc.path or '').name:<32} {label[:50]:<50} {signals}")
    for name, counts in response.facets.items():
        print(f"   facet {name}: " + ", ".join(f"{v}={c}" for v, c in list(counts.items())[:8]))


def default_shared() -> Path:
    """`../shared/data` beside the project checkout."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def run_demo(
    settings: Settings,
    *,
    shared: Path | None = None,
    serve: bool = True,
    host: str | None = None,
    port: int | None = None,
) -> int:
    shared = shared or default_shared()
    if not shared.is_dir():
        print(f"demo: {shared} not found; using only the bundled and generated images", file=sys.stderr)
    inputs, manifest = build_corpus(settings.data_dir / "demo-corpus", shared=shared if shared.is_dir() else None)
    with Engine.open(settings) as engine:
        report = ingest_paths(engine, inputs, manifest=manifest, progress=True)
        print(report.summary())
        for query in demo_queries(engine):
            print_response(query.title, run_search(engine, query.request))
    if serve:
        import uvicorn

        from engine.api import create_app

        host = host or settings.api.host
        port = port or settings.api.port
        print(f"\nserving on http://{host}:{port}  (try /search?q=dog&facet=colour, Ctrl-C to stop)")
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    return 0
