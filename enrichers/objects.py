"""Objects: COCO labels from an Ultralytics YOLO detector, and its pooled backbone features as a vector.

Two backends, chosen by the model path:
- an OpenVINO export directory (`*_openvino_model/` with an `.xml`): run by OpenVINO with one
  extra output, the backbone's last layer, so labels and the visual vector cost one pass;
- anything else (`yolo11n.pt`, a path to a `.pt`): ultralytics' `YOLO`, with a forward hook
  on the same layer.
Both use ultralytics' letterbox, NMS and box scaling, so detections match `YOLO.predict`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.documents import Box, DecodedImage, Document, Label
from enrichers.base import BaseEnricher, EnricherUnavailable

# Words people search with that mean a COCO class. Indexed with the label (BM25 "labels" field), so
# "people", "puppy" or "sofa" find person, dog and couch detections. Plurals come from the stemmer.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": ("people", "human", "man", "men", "woman", "women", "child", "children", "kid", "pedestrian"),
    "dog": ("puppy", "puppies", "doggy", "hound"),
    "cat": ("kitten", "kitty"),
    "car": ("automobile", "vehicle"),
    "bicycle": ("bike", "cycle"),
    "motorcycle": ("motorbike", "vehicle"),
    "airplane": ("plane", "aeroplane", "aircraft", "jet"),
    "bus": ("coach", "vehicle"),
    "truck": ("lorry", "vehicle"),
    "boat": ("ship",),
    "tv": ("television",),
    "couch": ("sofa",),
    "cell phone": ("phone", "smartphone", "mobile"),
    "dining table": ("table",),
    "potted plant": ("plant",),
    "sports ball": ("ball",),
    "laptop": ("computer", "notebook"),
    "bird": ("birds",),
    "horse": ("pony",),
}
_AREA_GRID = 64


def synonyms_of(labels: Sequence[Label]) -> list[str]:
    """Search words for these labels beyond their names (indexed with the labels)."""
    words: list[str] = []
    for lb in labels:
        words.extend(w for w in SYNONYMS.get(lb.name, ()) if w not in words)
    return words


@dataclass(slots=True)
class ObjectsResult:
    labels: list[Label] = field(default_factory=list)
    features: np.ndarray | None = None

    def apply(self, doc: Document) -> None:
        doc.labels = list(self.labels)
        doc.label_terms = synonyms_of(self.labels)
        if self.features is not None:
            doc.vectors["detector"] = self.features


def aggregate(detections: np.ndarray, names: dict[int, str], width: int, height: int) -> list[Label]:
    """Rows (x1, y1, x2, y2, conf, cls) in pixels -> labels with count, max confidence, boxes, area share."""
    by_class: dict[int, list[np.ndarray]] = {}
    for row in detections:
        by_class.setdefault(int(row[5]), []).append(row)
    labels = []
    for cls, rows in by_class.items():
        mask = np.zeros((_AREA_GRID, _AREA_GRID), dtype=bool)
        boxes = []
        for row in rows:
            x1, y1, x2, y2, conf = (float(v) for v in row[:5])
            box = Box(
                round(max(0.0, x1 / width), 4),
                round(max(0.0, y1 / height), 4),
                round(min(1.0, x2 / width), 4),
                round(min(1.0, y2 / height), 4),
                round(float(conf), 4),
            )
            boxes.append(box)
            mask[int(box.y1 * _AREA_GRID) : int(np.ceil(box.y2 * _AREA_GRID)),
                 int(box.x1 * _AREA_GRID) : int(np.ceil(box.x2 * _AREA_GRID))] = True  # fmt: skip
        boxes.sort(key=lambda b: -b.confidence)
        labels.append(Label(names.get(cls, str(cls)), len(rows), boxes[0].confidence, float(mask.mean()), boxes))
    labels.sort(key=lambda lb: (-lb.count, -lb.confidence, lb.name))
    return labels


def _pool(features: np.ndarray) -> np.ndarray:
    """Global average pool (B, C, H, W) -> (B, C), L2-normalised rows."""
    pooled = features.reshape(features.shape[0], features.shape[1], -1).mean(axis=2).astype(np.float32)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return pooled / norms


class _OpenVinoDetector:
    def __init__(self, directory: Path, *, imgsz: int, feature_layer: int, device: str) -> None:
        import openvino as ov
        import yaml

        xml = next(directory.glob("*.xml"))
        meta_path = directory / "metadata.yaml"
        meta = yaml.safe_load(meta_path.read_text()) if meta_path.exists() else {}
        self.names = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
        self.imgsz = int((meta.get("imgsz") or [imgsz])[0])
        core = ov.Core()
        model = core.read_model(xml)
        node = _last_op_of_layer(model, feature_layer)
        if node is None:
            raise EnricherUnavailable(
                "objects",
                f"{xml.name} has no layer {feature_layer} to pool features from",
                "set IMGSEARCH_OBJECTS__FEATURE_LAYER to the backbone's last layer",
            )
        model.add_outputs([node.output(0)])
        # Exports bake the batch size into reshapes (YOLO11's attention), so keep the exported shape.
        self.batch = int(model.inputs[0].get_partial_shape()[0].get_length())
        ov_device = "GPU" if device == "cuda" and "GPU" in core.available_devices else "CPU"
        self.compiled = core.compile_model(model, ov_device)
        self.lock = threading.Lock()

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(batch) != self.batch:
            parts = [self.infer(batch[i : i + self.batch]) for i in range(0, len(batch), self.batch)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        with self.lock:  # a compiled model's default request is not re-entrant
            out = self.compiled(batch)
        return np.asarray(out[0]), np.asarray(out[1])


def _last_op_of_layer(model: Any, layer: int) -> Any:
    prefixes = (f"__module.model.{layer}.", f"__module.model.{layer}/", f"/model.{layer}/")
    found = None
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if not name.startswith(prefixes) or op.get_type_name() == "Constant" or op.get_output_size() != 1:
            continue
        shape = op.get_output_partial_shape(0)
        if shape.rank.is_static and shape.rank.get_length() == 4:
            found = op
    return found


class ObjectsEnricher(BaseEnricher):
    name = "objects"
    version = "1"

    def __init__(
        self,
        *,
        model: str = "yolo11n.pt",
        confidence: float = 0.25,
        iou: float = 0.45,
        imgsz: int = 640,
        batch_size: int = 16,
        feature_layer: int = 10,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self.model, self.confidence, self.iou, self.imgsz = model, confidence, iou, imgsz
        self.batch_size, self.feature_layer, self.device = max(1, batch_size), feature_layer, device
        self._ov: _OpenVinoDetector | None = None
        self._yolo: Any = None
        self._captured: list[Any] = []

    def _load(self) -> None:
        try:
            import torch  # noqa: F401  (ultralytics' NMS runs on torch tensors)
            from ultralytics.utils import nms  # noqa: F401
        except ImportError as exc:
            raise EnricherUnavailable(
                "objects", f"ultralytics/torch cannot be imported ({exc})", "pip install ultralytics torch torchvision"
            ) from exc
        path = Path(self.model).expanduser()
        try:
            if path.is_dir() and any(path.glob("*.xml")):
                self._ov = _OpenVinoDetector(
                    path, imgsz=self.imgsz, feature_layer=self.feature_layer, device=self.device
                )
                names = self._ov.names
            else:
                self._load_ultralytics()
                names = self._yolo.names
        except EnricherUnavailable:
            raise
        except Exception as exc:
            raise EnricherUnavailable(
                "objects",
                f"cannot load detector {self.model!r} ({type(exc).__name__}: {exc})",
                "set IMGSEARCH_OBJECTS__MODEL to a local YOLO .pt file or an OpenVINO export directory",
            ) from exc
        self.names: dict[int, str] = dict(names)
        probe = self._detect([np.zeros((64, 64, 3), dtype=np.uint8)])[0]
        if probe.features is not None:
            self.vector_fields = {"detector": int(probe.features.shape[0])}

    def _load_ultralytics(self) -> None:
        from ultralytics import YOLO

        self._yolo = YOLO(self.model, task="detect")
        layer = self._yolo.model.model[self.feature_layer]
        layer.register_forward_hook(lambda _m, _i, out: self._captured.append(out.detach().float().cpu().numpy()))

    def _enrich(self, image: DecodedImage) -> ObjectsResult:
        return self._detect([image.pixels])[0]

    def enrich_batch(self, images: Sequence[DecodedImage]) -> list[ObjectsResult]:
        self.load()
        out: list[ObjectsResult] = []
        for start in range(0, len(images), self.batch_size):
            out.extend(self._detect([im.pixels for im in images[start : start + self.batch_size]]))
        return out

    def _detect(self, pixels: list[np.ndarray]) -> list[ObjectsResult]:
        return self._detect_ov(pixels) if self._ov is not None else self._detect_ultralytics(pixels)

    def _detect_ov(self, pixels: list[np.ndarray]) -> list[ObjectsResult]:
        import torch
        from ultralytics.data.augment import LetterBox
        from ultralytics.utils import nms, ops

        assert self._ov is not None
        size = self._ov.imgsz
        letterbox = LetterBox(new_shape=(size, size), auto=False)
        batch = np.stack([np.asarray(letterbox(image=p)) for p in pixels]).astype(np.float32) / 255.0
        raw, features = self._ov.infer(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        kept = nms.non_max_suppression(torch.from_numpy(raw), self.confidence, self.iou, max_det=300)
        pooled = _pool(features)
        results = []
        for p, det, vec in zip(pixels, kept, pooled, strict=True):
            det = det.numpy()
            if len(det):
                det[:, :4] = ops.scale_boxes((size, size), det[:, :4], p.shape[:2])
            results.append(ObjectsResult(aggregate(det, self.names, p.shape[1], p.shape[0]), vec))
        return results

    def _detect_ultralytics(self, pixels: list[np.ndarray]) -> list[ObjectsResult]:
        self._captured.clear()
        bgr = [np.ascontiguousarray(p[..., ::-1]) for p in pixels]  # ultralytics takes OpenCV (BGR) arrays
        predictions = self._yolo.predict(
            bgr, conf=self.confidence, iou=self.iou, imgsz=self.imgsz, device=self.device, verbose=False, batch=len(bgr)
        )
        pooled = _pool(np.concatenate(self._captured)) if self._captured else [None] * len(pixels)
        results = []
        for p, pred, vec in zip(pixels, predictions, pooled, strict=True):
            det = pred.boxes.data.cpu().numpy() if pred.boxes is not None else np.zeros((0, 6))
            results.append(ObjectsResult(aggregate(det, self.names, p.shape[1], p.shape[0]), vec))
        return results
