"""One settings object, read from `IMGSEARCH_*` environment variables (nested with `__`).

Built once at the edge (CLI, app factory) and passed down; nothing reads the environment
elsewhere. Every field carries a description: `docs/settings.md` is generated from them and a
test fails when a setting is undocumented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TextWeights(BaseModel):
    """BM25 weight of each text field (SQLite FTS5 column weights, Elasticsearch boosts)."""

    title: float = Field(3.0, description="Weight of the manifest title.")
    caption: float = Field(2.0, description="Weight of the manifest caption.")
    tags: float = Field(2.5, description="Weight of manifest tags.")
    filename: float = Field(1.0, description="Weight of the words in the file name (without extension).")
    colours: float = Field(1.0, description="Weight of the dominant colour names.")
    labels: float = Field(1.5, description="Weight of detected object labels.")
    ocr: float = Field(1.0, description="Weight of text read from the image (OCR).")


class VectorSettings(BaseModel):
    """How each vector field is indexed in Faiss."""

    exact_threshold: int = Field(
        50_000,
        description="Below this many vectors a field uses exact (Flat) search; above it the ANN factory.",
    )
    factory: str = Field(
        "IVF{nlist},Flat",
        description="Faiss index factory string used above the threshold; `{nlist}` becomes about 4*sqrt(n).",
    )
    nprobe: int = Field(32, description="IVF lists visited per query (recall vs speed).")
    hnsw_ef_search: int = Field(128, description="HNSW candidate list size per query, when HNSW is chosen.")
    exact_filter_max: int = Field(
        5_000,
        description="A filtered vector search whose allowed set is at most this size is answered exactly.",
    )
    use_gpu: bool = Field(True, description="Move exact indexes to the GPU when Faiss sees one.")
    search_threads: int = Field(
        1,
        description="OpenMP threads per vector query (0: Faiss's default, every core). One suits a server answering "
        "queries side by side: on a busy 2-core machine Faiss's default made a single query 5-50x slower "
        "(exact 20k: 24 ms vs 1.2 ms).",
    )


class SearchSettings(BaseModel):
    """Query-time behaviour."""

    candidate_k: int = Field(200, description="Candidates each leg returns before fusion.")
    rrf_k: int = Field(60, description="Reciprocal rank fusion constant (higher flattens rank differences).")
    leg_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "text": 1.0,
            "clip": 1.0,
            "detector": 1.0,
            "image_text": 1.0,
            "colour": 0.3,
            "phash": 1.5,
        },
        description="RRF weight per leg: text (BM25), clip, detector, colour (vector fields), phash, "
        "image_text (a query image's OCR words and labels); unlisted legs weigh 1.",
    )
    phash_max_distance: int = Field(
        12, description="Largest Hamming distance (of 64 bits) that counts as a near-duplicate."
    )
    pin_max_distance: int = Field(
        8,
        description="Near-duplicates of a query image within this pHash distance (of 64 bits) rank above every "
        "other hit, closest first; -1 turns pinning off (they then only add their phash leg weight to fusion). "
        "Stricter than phash_max_distance, since a pin overrides every other signal.",
    )
    max_k: int = Field(1000, description="Largest page size a request may ask for.")
    max_offset: int = Field(10_000, description="Deepest offset a request may page to.")
    colour_min_share: float = Field(
        0.05, description="Share of the image a colour must cover to count for `colour=NAME` and facets."
    )


class OcrSettings(BaseModel):
    """Tesseract OCR."""

    lang: str = Field("eng", description="Tesseract language(s), e.g. `eng` or `eng+deu` (needs tesseract-ocr-LANG).")
    min_confidence: float = Field(60.0, description="Words Tesseract is less confident about (0-100) are dropped.")
    timeout_s: float = Field(20.0, description="Per-image OCR time limit in seconds; a slower image gets no text.")
    gate: bool = Field(True, description="Skip OCR on images the cheap text detector finds no text lines in.")
    gate_min_lines: int = Field(3, description="Text-line-like regions the gate needs to see before OCR runs.")
    workers: int = Field(2, description="Tesseract processes run at once during ingest.")
    min_side: int = Field(800, description="Images whose short side is smaller are upscaled (at most 3x) for OCR.")
    binarize: bool = Field(False, description="Otsu-binarise before OCR (Tesseract also binarises internally).")
    psm: int = Field(3, description="Tesseract page segmentation mode (3 = automatic, 11 = sparse text).")


class ObjectsSettings(BaseModel):
    """Ultralytics YOLO object detector."""

    model: str = Field(
        "yolo11n.pt",
        description="YOLO weights: a name ultralytics can fetch, a .pt path, or an OpenVINO export directory.",
    )
    confidence: float = Field(0.25, description="Detections below this confidence are dropped.")
    iou: float = Field(0.45, description="NMS overlap threshold.")
    imgsz: int = Field(640, description="Inference image size.")
    batch_size: int = Field(16, description="Images per detector batch.")
    feature_layer: int = Field(10, description="Backbone layer pooled into the `detector` vector (YOLO11: 10).")


class ClipSettings(BaseModel):
    """CLIP image/text embeddings (transformers)."""

    model: str = Field(
        "openai/clip-vit-base-patch32",
        description="Hub model id or a local directory written by `save_pretrained`.",
    )
    batch_size: int = Field(32, description="Images or texts per CLIP batch.")
    local_files_only: bool = Field(False, description="Never contact the model hub (use the local cache only).")


class ElasticsearchSettings(BaseModel):
    """The Elasticsearch 9.x cluster used when `backend` is `elasticsearch`."""

    url: str = Field("http://localhost:9200", description="Cluster URL (comma-separate several nodes).")
    api_key: str | None = Field(None, description="API key (base64 `id:key`); preferred over basic auth.")
    username: str | None = Field(None, description="Basic-auth user, when no API key is given.")
    password: str | None = Field(None, description="Basic-auth password.")
    ca_certs: Path | None = Field(None, description="CA certificate file for a cluster with its own TLS CA.")
    index_prefix: str = Field("imgsearch", description="Prefix of the index names and aliases imgsearch creates.")
    request_timeout_s: float = Field(30.0, description="Per-request timeout in seconds.")
    max_retries: int = Field(3, description="Retries of a request (and of 429-rejected bulk items).")


class ApiSettings(BaseModel):
    """HTTP server."""

    host: str = Field("127.0.0.1", description="Address `imgsearch serve` binds to.")
    port: int = Field(8000, description="Port `imgsearch serve` listens on.")
    max_upload_bytes: int = Field(25 * 1024 * 1024, description="Largest accepted request body (uploads).")
    thumbnail_size: int = Field(256, description="Longest side of generated thumbnails, in pixels.")


class Settings(BaseSettings):
    """All of imgsearch's settings. Environment: `IMGSEARCH_<NAME>`, nested `IMGSEARCH_SEARCH__RRF_K`."""

    model_config = SettingsConfigDict(env_prefix="IMGSEARCH_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(Path(".imgsearch"), description="Where the store, vector indexes and uploads live.")
    backend: Literal["sqlite", "elasticsearch"] = Field(
        "sqlite", description="Document store: embedded SQLite, or an Elasticsearch cluster."
    )
    enrichers: list[str] = Field(
        default_factory=lambda: ["colour", "phash", "ocr", "objects", "clip"],
        description="Enrichers run on every image, by name (colour, phash, ocr, objects, clip); "
        "one that cannot load is reported and skipped.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where models run: auto picks CUDA when present."
    )
    pipeline: bool = Field(True, description="Decode the next ingest batch while models work on the current one.")
    max_image_pixels: int = Field(
        80_000_000, description="Images with more pixels than this are refused (decompression bombs)."
    )
    max_file_bytes: int = Field(100 * 1024 * 1024, description="Files larger than this are refused.")
    batch_size: int = Field(64, description="Images decoded and enriched per batch during ingest.")
    enrich_max_side: int = Field(
        2048, description="Enrichers see images scaled down to at most this long side (bounds memory per batch)."
    )
    workers: int = Field(2, description="Threads decoding and enriching images during ingest.")
    text_weights: TextWeights = Field(default_factory=lambda: TextWeights(), description="BM25 field weights.")
    vectors: VectorSettings = Field(default_factory=lambda: VectorSettings(), description="Faiss index settings.")
    search: SearchSettings = Field(default_factory=lambda: SearchSettings(), description="Query-time settings.")
    ocr: OcrSettings = Field(default_factory=lambda: OcrSettings(), description="OCR settings.")
    objects: ObjectsSettings = Field(default_factory=lambda: ObjectsSettings(), description="Object detector settings.")
    clip: ClipSettings = Field(default_factory=lambda: ClipSettings(), description="CLIP settings.")
    elasticsearch: ElasticsearchSettings = Field(
        default_factory=lambda: ElasticsearchSettings(), description="Elasticsearch connection settings."
    )
    api: ApiSettings = Field(default_factory=lambda: ApiSettings(), description="HTTP server settings.")

    def enricher_options(self, name: str) -> dict[str, object]:
        """Constructor options for the enricher registered as `name`."""
        if name == "ocr":
            return self.ocr.model_dump()
        if name == "objects":
            return {**self.objects.model_dump(), "device": self.device}
        if name == "clip":
            return {**self.clip.model_dump(), "device": self.device}
        return {}

    @property
    def store_path(self) -> Path:
        return self.data_dir / "imgsearch.sqlite3"

    @property
    def vector_dir(self) -> Path:
        return self.data_dir / "vectors"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def thumbnail_dir(self) -> Path:
        return self.data_dir / "thumbnails"


def settings_reference() -> str:
    """Markdown table of every setting with its environment variable, default and description."""
    lines = [
        "# Settings",
        "",
        "Every setting is read from the environment (prefix `IMGSEARCH_`, nested with `__`).",
        "This file is generated by `python -m engine.settings`; a test fails when it is stale.",
        "",
        "| environment variable | default | description |",
        "| --- | --- | --- |",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            env = f"{prefix}{name.upper()}"
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{env}__")
                continue
            default = info.get_default(call_default_factory=True)
            shown = str(default).replace("|", "\\|")
            lines.append(f"| `{env}` | `{shown}` | {info.description or ''} |")

    walk(Settings, "IMGSEARCH_")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_reference(), end="")
