"""The `imgsearch` command line. Every command takes `--data-dir` (or IMGSEARCH_DATA_DIR).

Exit status: 0 success, 1 error (message on stderr), 3 ingest finished but some files failed.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import ImgSearchError

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def _settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from engine.settings import Settings

    try:
        return Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    except ValidationError as exc:
        raise ImgSearchError(f"invalid settings: {exc}") from exc


def _open(args: argparse.Namespace) -> Any:
    from engine.engine import Engine

    return Engine.open(_settings(args))


def cmd_ingest(args: argparse.Namespace) -> int:
    from engine.ingest import ingest_paths
    from engine.manifest import Manifest

    manifest = None
    for path in args.manifest or []:
        loaded = Manifest.load(Path(path))
        if manifest is None:
            manifest = loaded
        else:
            manifest.by_path.update(loaded.by_path)
            manifest.by_name.update(loaded.by_name)
    with _open(args) as engine:
        report = ingest_paths(engine, args.paths, manifest=manifest, progress=not args.no_progress and not args.json)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.summary())
    return EXIT_PARTIAL if report.failed else EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from engine.filters import parse_facets, parse_filters
    from engine.search import SearchRequest, run_search

    image = None
    if args.image:
        try:
            image = Path(args.image).read_bytes()
        except OSError as exc:
            raise ImgSearchError(f"cannot read --image {args.image}: {exc.strerror or exc}") from exc
    request = SearchRequest(
        text=args.text or "",
        image=image,
        like=args.like,
        filters=parse_filters(args.filter),
        facets=parse_facets(args.facet),
        k=args.k,
        offset=args.offset,
    )
    with _open(args) as engine:
        response = run_search(engine, request)
    if args.json:
        print(json.dumps(response.to_dict()))
        return EXIT_OK
    print(
        f"{response.total}{'+' if response.total_relation == 'gte' else ''} results "
        f"(legs: {response.legs or 'browse'}; {response.took_ms:.1f} ms; query_id {response.query_id})"
    )
    for n, hit in enumerate(response.hits, start=request.offset + 1):
        signals = " ".join(f"{k}={v}" for k, v in hit.signals.items())
        print(f"{n:3d}. {hit.score:.5f} {hit.id} {hit.document.path or ''}")
        if signals:
            print(f"      {signals}")
        if hit.ocr_snippet:
            marked = hit.ocr_snippet.replace("<mark>", "[").replace("</mark>", "]")
            print(f"      text: {html.unescape(marked)}")
    for name, counts in response.facets.items():
        print(f"facet {name}: " + ", ".join(f"{v} ({c})" for v, c in counts.items()))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.api import create_app

    settings = _settings(args)
    host = args.host or settings.api.host
    port = args.port or settings.api.port
    print(
        f"imgsearch serving {settings.data_dir} on http://{host}:{port} (API description: /openapi.json)",
        file=sys.stderr,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        stats = engine.stats()
    print(json.dumps(stats, indent=None if args.json else 2, default=str))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        removed = engine.delete(args.ids)
    missing = len(set(args.ids)) - removed
    print(f"deleted {removed} image(s)" + (f"; {missing} id(s) were not indexed" if missing else ""))
    return EXIT_OK if not missing else EXIT_PARTIAL


def cmd_doctor(args: argparse.Namespace) -> int:
    """Load every component and say, for each, whether it is ready and what to do when it is not."""
    with _open(args) as engine:
        components = engine.components(load=True)
    if args.json:
        print(json.dumps({"components": components}))
    else:
        for c in components:
            print(f"{c['status']:<10} {c['name']:<18} {c['detail']}")
            if c["fix"]:
                print(f"{'':<10} {'':<18} fix: {c['fix']}")
        missing = [c["name"] for c in components if c["status"] == "missing"]
        print("all components ready" if not missing else f"running without: {', '.join(missing)}")
    return EXIT_OK if all(c["status"] == "ready" for c in components) else EXIT_PARTIAL


def cmd_reindex(args: argparse.Namespace) -> int:
    from engine.ingest import reindex_stale

    if args.rebuild_index:
        with _open(args) as engine:
            rebuild = getattr(engine.store, "rebuild_index", None)
            if rebuild is None:
                raise ImgSearchError("--rebuild-index applies to the Elasticsearch backend; SQLite migrates itself")
            print(f"documents now in {rebuild()} (alias swapped atomically)")
        return EXIT_OK
    if not args.stale:
        raise ImgSearchError(
            "say what to reindex: `--stale` re-runs outdated enrichers, `--rebuild-index` rebuilds the "
            "Elasticsearch index with the current mapping"
        )
    with _open(args) as engine:
        report = reindex_stale(engine, progress=not args.no_progress)
    print(
        f"re-enriched {report.replaced}, up to date {report.unchanged}, failed {len(report.failed)} "
        f"({report.seconds:.1f}s)"
    )
    for failure in report.failed:
        print(f"  FAILED {failure.path}: {failure.reason}")
    return EXIT_PARTIAL if report.failed else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write every document (vectors included), impression and click as JSONL to FILE or `-` (stdout)."""
    from engine.migrate import export_documents

    with _open(args) as engine:
        if args.file == "-":
            count = export_documents(engine.store, sys.stdout)
        else:
            try:
                with open(args.file, "w", encoding="utf-8") as fh:
                    count = export_documents(engine.store, fh, progress=not args.no_progress)
            except OSError as exc:
                raise ImgSearchError(f"cannot write {args.file}: {exc.strerror or exc}") from exc
    print(f"exported {count} document(s) to {'stdout' if args.file == '-' else args.file}", file=sys.stderr)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Load an `imgsearch export` file into the configured backend (no model is re-run)."""
    from engine.migrate import import_documents

    with _open(args) as engine:
        if args.file == "-":
            report = import_documents(engine, sys.stdin)
        else:
            try:
                with open(args.file, encoding="utf-8") as fh:
                    report = import_documents(engine, fh, progress=not args.no_progress)
            except OSError as exc:
                raise ImgSearchError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    print(report.summary())
    return EXIT_PARTIAL if report.failed else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    shared = Path(args.shared) if args.shared else None
    return run_demo(_settings(args), shared=shared, serve=not args.no_serve, host=args.host, port=args.port)


def cmd_eval(args: argparse.Namespace) -> int:
    """Build a fresh index from a shared data set, run the suite's queries and report its metrics."""
    from engine.evaluation import format_report, run_suite

    try:
        report = run_suite(
            args.suite,
            settings=_settings(args),
            data_root=Path(args.data_root) if args.data_root else None,
            limit=args.limit,
            progress=not args.json,
        )
    except ValueError as exc:
        raise ImgSearchError(str(exc)) from exc
    print(json.dumps(report) if args.json else format_report(report))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    data_dir_help = "index location (default: $IMGSEARCH_DATA_DIR or ./.imgsearch)"
    parser = argparse.ArgumentParser(prog="imgsearch", description="Hybrid multimodal image search.")
    parser.add_argument("--data-dir", help=data_dir_help)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    # The same options after the subcommand; SUPPRESS keeps a value given before it from being reset.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", parents=[common], help="index image files, folders and globs")
    p.add_argument("paths", nargs="+", help="files, folders (recursive) or globs")
    p.add_argument("--manifest", action="append", help="CSV or JSONL sidecar with title/caption/tags/licence/source")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", parents=[common], help="search by keywords, image, similar id, filters")
    p.add_argument("text", nargs="?", default="", help="keywords")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--image", help="find images like this file (reverse image search)")
    group.add_argument("--like", help="find images like this indexed image id")
    p.add_argument("--filter", action="append", help="FIELD=VALUE or FIELD>=N (repeatable)")
    p.add_argument("--facet", action="append", help="count values of FIELD (repeatable)")
    p.add_argument("--k", type=int, default=10, help="hits per page (default 10)")
    p.add_argument("--offset", type=int, default=0, help="skip this many hits")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("serve", parents=[common], help="run the HTTP API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stats", parents=[common], help="store and index statistics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("delete", parents=[common], help="remove images by id")
    p.add_argument("ids", nargs="+")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("doctor", parents=[common], help="check every component (store, indexes, OCR, models)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("reindex", parents=[common], help="re-run enrichers whose version changed")
    p.add_argument("--stale", action="store_true", help="only documents an enricher's current version has not seen")
    p.add_argument(
        "--rebuild-index",
        action="store_true",
        help="Elasticsearch: copy into a new index with the current mapping and swap the alias",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("export", parents=[common], help="write the whole index (vectors included) as JSONL")
    p.add_argument("file", help="output file, or - for stdout")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common], help="load an `imgsearch export` file into the configured backend")
    p.add_argument("file", help="export file, or - for stdin")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("demo", parents=[common], help="index a demo corpus, run example queries, serve")
    p.add_argument("--no-serve", action="store_true", help="stop after the example queries")
    p.add_argument("--shared", help="folder of shared data sets to include (default: ../shared/data)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("eval", parents=[common], help="measure search quality on a shared data set")
    p.add_argument("suite", help="imagenette, flickr8k, sroie, minicoco or near-duplicates")
    p.add_argument("--limit", type=int, help="at most this many queries (a quick smoke run)")
    p.add_argument("--data-root", help="folder of the shared data sets (default: ../shared/data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except ImgSearchError as exc:
        print(f"imgsearch: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("imgsearch: interrupted; what was committed is kept, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
