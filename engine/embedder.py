"""CLIP embeddings (transformers `CLIPModel` + `CLIPProcessor`): image and text in one space.

The model is a hub id (`openai/clip-vit-base-patch32`, fetched once and cached by
transformers) or a local directory written by `save_pretrained`. Vectors are L2-normalised
and go to the `clip` vector field; text queries go through the text tower and search the
same field. On CUDA the model runs in bf16 (fp16 where bf16 is unsupported). When weights
cannot be loaded the engine reports it once and runs without the CLIP leg.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from engine.documents import DecodedImage, Document
from engine.vectors import normalise
from enrichers.base import BaseEnricher, EnricherUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ClipResult:
    vector: np.ndarray

    def apply(self, doc: Document) -> None:
        doc.vectors["clip"] = self.vector


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub answers a TCP connect (so an offline machine fails in seconds, not after
    huggingface_hub's retries). Honours HF_HUB_OFFLINE and HF_ENDPOINT."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; `cuda` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EnricherUnavailable("clip", "device=cuda but torch sees no GPU", "set IMGSEARCH_DEVICE=cpu or auto")
    return device


class ClipEmbedder(BaseEnricher):
    """An enricher (image -> `clip` vector) that also encodes text queries."""

    name = "clip"
    version = "1"

    def __init__(
        self,
        *,
        model: str = "openai/clip-vit-base-patch32",
        device: str = "auto",
        batch_size: int = 32,
        local_files_only: bool = False,
    ) -> None:
        super().__init__()
        self.model_name, self.device_setting, self.batch_size = model, device, max(1, batch_size)
        self.local_files_only = local_files_only or Path(model).expanduser().is_dir()
        self._model: Any = None
        self._processor: Any = None
        self._infer_lock = threading.Lock()
        self.device = "cpu"
        self.dtype = "float32"

    def _load(self) -> None:
        try:
            import torch
            from transformers import CLIPModel, CLIPProcessor
        except ImportError as exc:
            raise EnricherUnavailable(
                "clip", f"torch/transformers cannot be imported ({exc})", "pip install torch transformers"
            ) from exc
        self.device = resolve_device(self.device_setting)
        dtype = torch.float32
        if self.device == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        source = (
            str(Path(self.model_name).expanduser()) if Path(self.model_name).expanduser().is_dir() else self.model_name
        )
        try:
            try:  # the local cache first: no network round trips when the weights are already here
                model: Any = CLIPModel.from_pretrained(source, local_files_only=True, dtype=dtype)
                processor = CLIPProcessor.from_pretrained(source, local_files_only=True)
            except Exception:
                if self.local_files_only:
                    raise
                if not hub_reachable():
                    raise OSError("not in the local cache, and the model hub cannot be reached") from None
                model = CLIPModel.from_pretrained(source, dtype=dtype)
                processor = CLIPProcessor.from_pretrained(source)
        except Exception as exc:
            first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise EnricherUnavailable(
                "clip",
                f"cannot load CLIP weights {self.model_name!r} ({type(exc).__name__}: {first_line})",
                "set IMGSEARCH_CLIP__MODEL to a local directory saved with save_pretrained, or allow the model "
                "hub once so transformers can cache it",
            ) from exc
        self._model = model.to(self.device).eval()
        self._processor = processor
        self.dtype = str(dtype).removeprefix("torch.")
        self.vector_fields = {"clip": int(model.config.projection_dim)}
        self._max_tokens = int(model.config.text_config.max_position_embeddings)

    @staticmethod
    def _features(output: Any) -> Any:
        # transformers 5 returns a model output whose pooler_output is the projected embedding.
        return getattr(output, "pooler_output", output)

    def _normalise(self, tensor: Any) -> np.ndarray:
        return normalise(tensor.float().cpu().numpy())

    def encode_images(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) unit vectors for RGB uint8 arrays, in batches of `batch_size`."""
        import torch

        self.load()
        out = []
        for start in range(0, len(pixels), self.batch_size):
            # torch cannot wrap read-only arrays (decoded images are), so copy those
            chunk = [
                p if p.flags.writeable and p.flags.c_contiguous else np.array(p)
                for p in pixels[start : start + self.batch_size]
            ]
            inputs = self._processor(images=chunk, return_tensors="pt")
            values = inputs["pixel_values"].to(self.device, dtype=self._model.dtype)
            with self._infer_lock, torch.inference_mode():
                out.append(self._normalise(self._features(self._model.get_image_features(pixel_values=values))))
        return np.concatenate(out) if out else np.zeros((0, self.vector_fields.get("clip", 0)), np.float32)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit vectors for text queries (truncated to the model's context length)."""
        import torch

        self.load()
        out = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self._processor(
                text=list(texts[start : start + self.batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self._max_tokens,
            )
            inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            with self._infer_lock, torch.inference_mode():
                out.append(self._normalise(self._features(self._model.get_text_features(**inputs))))
        return np.concatenate(out) if out else np.zeros((0, self.vector_fields.get("clip", 0)), np.float32)

    def _enrich(self, image: DecodedImage) -> ClipResult:
        return ClipResult(self.encode_images([image.pixels])[0])

    def enrich_batch(self, images: Sequence[DecodedImage]) -> list[ClipResult]:
        return [ClipResult(v) for v in self.encode_images([im.pixels for im in images])]
