"""imgsearch engine: settings, documents, store backends, vectors, ingest, search, API and CLI."""

__version__ = "0.1.0"
