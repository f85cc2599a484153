# imgsearch API server. Build: docker build -t imgsearch .   Run: see compose.yaml
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY engine ./engine
COPY enrichers ./enrichers
COPY ranking ./ranking
COPY mappings ./mappings
# The model enrichers make the image large (torch); build with --build-arg EXTRAS=elasticsearch for a
# small image that runs colour and pHash only (the others report themselves missing in /health).
ARG EXTRAS=elasticsearch,models
ARG TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
RUN if echo "$EXTRAS" | grep -q models; then pip install --no-cache-dir $TORCH_SPEC; fi \
    && pip install --no-cache-dir ".[$EXTRAS]"
ENV IMGSEARCH_DATA_DIR=/data \
    IMGSEARCH_API__HOST=0.0.0.0 \
    IMGSEARCH_API__PORT=8000
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["imgsearch", "serve"]
