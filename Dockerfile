# imgsearch API server. Build: docker build -t imgsearch .   Run: see compose.yaml
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY engine ./engine
COPY enrichers ./enrichers
COPY ranking ./ranking
RUN pip install --no-cache-dir '.[elasticsearch]'
ENV IMGSEARCH_DATA_DIR=/data \
    IMGSEARCH_API__HOST=0.0.0.0 \
    IMGSEARCH_API__PORT=8000
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["imgsearch", "serve"]
