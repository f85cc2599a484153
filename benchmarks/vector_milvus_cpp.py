"""Vector leg vs the C++ Milvus Lite (2.5.x), the build the reference image-search systems shipped with.

`benchmarks.vector_peers` measures Milvus Lite 3.x, the pure-Python rewrite that `pip install milvus-lite`
gives today. Milvus Lite 2.5 wraps the C++ Milvus core (a server subprocess behind gRPC) and needs
pymilvus 2.5, which cannot sit beside pymilvus 3 in one environment, so this script runs with both put
first on the path from a separate folder:

    .venv/bin/pip install --no-deps --target .bench-milvus25 "pymilvus==2.5.*" "milvus-lite==2.5.1" \\
        "setuptools<81" ujson python-dotenv pandas
    PYTHONPATH=.bench-milvus25 .venv/bin/python -m benchmarks.vector_milvus_cpp [--sizes 100000] [--no-markdown]

Same data, queries and ground truth as `vector_peers` (same generator and seeds); the engine's HNSW and
IVF sweeps run interleaved with Milvus's IVF_FLAT sweep and FLAT (its local mode refuses HNSW), query by
query in random order, one query at a time, k=10.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import report
from benchmarks.report import fmt, table
from benchmarks.vecdata import Mixture, doc_ids, exact_neighbours, recall_at_k
from benchmarks.vector_peers import hnsw_of
from benchmarks.vector_search import set_nprobe
from engine.vectors import VectorIndex

DIM = 512
Search = Callable[[int], list[str]]


def engine_configs(data: np.ndarray, ids: list[str], queries: np.ndarray, k: int) -> dict[str, Search]:
    out: dict[str, Search] = {}
    for factory, label, knob, values in (
        ("HNSW32,Flat", "engine HNSW32", "hnsw_ef_search", (16, 32, 64, 128, 256)),
        ("IVF{nlist},Flat", "engine IVF", "nprobe", (4, 8, 16, 32, 64)),
    ):
        index = VectorIndex("bench", DIM, exact_threshold=0, factory=factory)
        t = time.perf_counter()
        index.add(ids, data)
        label = f"engine {index.spec.split(',')[0]}"  # the nlist the engine chose
        print(f"  {label}: built in {time.perf_counter() - t:.1f}s", flush=True)
        for value in values:

            def call(i: int, index: VectorIndex = index, knob: str = knob, value: int = value) -> list[str]:
                if knob == "nprobe":
                    set_nprobe(index, value)
                else:
                    hnsw_of(index).efSearch = value
                return [doc for doc, _ in index.search(queries[i : i + 1], k)[0]]

            out[f"{label} | {knob.replace('hnsw_ef_search', 'efSearch')} {value}"] = call
    return out


def milvus_configs(data: np.ndarray, ids: list[str], queries: np.ndarray, k: int, tmp: Path) -> dict[str, Search]:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(tmp / "bench.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    out: dict[str, Search] = {}
    n = len(data)
    t = time.perf_counter()
    for name in ("ivf", "flat"):
        client.create_collection(name, schema=schema)
        for start in range(0, n, 5_000):
            rows = [{"pk": ids[i], "vector": data[i].tolist()} for i in range(start, min(n, start + 5_000))]
            client.insert(name, rows)
        client.flush(name)
    insert_s = time.perf_counter() - t
    print(f"  Milvus Lite (C++): inserted {n:,} rows twice in {insert_s:.1f}s ({2 * n / insert_s:,.0f} rows/s)")
    nlist = int(min(65_536, max(16, round(4 * math.sqrt(n)))))  # the engine's rule
    for name, index_type, build, knob, values in (
        ("ivf", "IVF_FLAT", {"nlist": nlist}, "nprobe", (4, 8, 16, 32, 64)),
        ("flat", "FLAT", {}, "-", (0,)),
    ):
        params = client.prepare_index_params()
        params.add_index("vector", index_type=index_type, metric_type="COSINE", params=build)
        t = time.perf_counter()
        client.create_index(name, params)
        client.load_collection(name)
        print(f"  Milvus Lite (C++) {index_type} {build}: index + load in {time.perf_counter() - t:.1f}s", flush=True)
        for value in values:

            def call(i: int, name: str = name, knob: str = knob, value: int = value) -> list[str]:
                hits = client.search(
                    name,
                    data=[queries[i].tolist()],
                    limit=k,
                    search_params={"metric_type": "COSINE", "params": {knob: value} if knob != "-" else {}},
                )
                return [str(h["id"]) for h in hits[0]]

            label = f"Milvus Lite (C++) {index_type}" + (f" nlist {nlist}" if index_type == "IVF_FLAT" else "")
            out[f"{label} | {knob} {value}" if knob != "-" else f"{label} | -"] = call
    return out


def run_size(n: int, args: argparse.Namespace) -> tuple[list[list[object]], list[str]]:
    mix = Mixture.make(dim=DIM, seed=args.seed)
    data, queries = mix.sample(n, seed=args.seed + 1), mix.sample(args.queries, seed=args.seed + 2)
    ids = doc_ids(n)
    truth_rows = exact_neighbours(data, queries, args.k)
    truth = [{ids[j] for j in row} for row in truth_rows]
    print(f"{n:,} vectors, {args.queries} queries", flush=True)
    with tempfile.TemporaryDirectory(prefix="imgsearch-milvus25-") as tmp:
        configs = engine_configs(data, ids, queries, args.k)
        configs.update(milvus_configs(data, ids, queries, args.k, Path(tmp)))
        names = list(configs)
        times: dict[str, list[float]] = {c: [] for c in names}
        found: dict[str, list[list[str]]] = {c: [] for c in names}
        rng = random.Random(args.seed)
        for i in range(min(20, args.queries)):  # warm-up
            for c in names:
                configs[c](i)
        for i in range(args.queries):
            order = names[:]
            rng.shuffle(order)
            for c in order:
                t = time.perf_counter()
                got = configs[c](i)
                times[c].append(time.perf_counter() - t)
                found[c].append(got)
    rows: list[list[object]] = []
    best: dict[str, tuple[float, str, float]] = {}
    for c in names:
        system, setting = c.split(" | ")
        recall = recall_at_k(found[c], truth, args.k)
        qps = len(times[c]) / sum(times[c])
        p50 = float(np.median(times[c])) * 1000
        rows.append([f"{n:,}", system, setting, fmt(p50, 3), fmt(qps, 1), f"{recall:.4f}"])
        for target in (0.95, 0.99):
            key = f"{target}|{'engine' if system.startswith('engine') else 'milvus'}"
            if recall >= target and (key not in best or qps > best[key][0]):
                best[key] = (qps, c, recall)
    lines = []
    for target in (0.95, 0.99):
        e, m = best.get(f"{target}|engine"), best.get(f"{target}|milvus")
        if e and m:
            lines.append(
                f"- **{n:,} vectors, recall@10 >= {target}**: {e[1].replace(' | ', ', ')} at {fmt(e[0], 0)} QPS "
                f"(recall {e[2]:.3f}); {m[1].replace(' | ', ', ')} at {fmt(m[0], 0)} QPS (recall {m[2]:.3f}): "
                f"the engine answers {e[0] / m[0]:.1f}x as many queries per second."
            )
    return rows, lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    report.add_markdown_args(parser)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # pkg_resources in milvus-lite 2.5
    import milvus_lite
    import pymilvus

    versions = f"pymilvus {pymilvus.__version__}, milvus-lite {milvus_lite.__version__}"
    if not str(milvus_lite.__version__).startswith("2."):
        raise SystemExit(f"this compares the C++ Milvus Lite 2.x; found {versions} (see --help for the install)")
    rows: list[list[object]] = []
    lines: list[str] = []
    for n in args.sizes:
        r, ln = run_size(n, args)
        rows += r
        lines += ln
    headers = ["vectors", "system / index", "setting", "p50 ms", "QPS", "recall@10"]
    print(table(headers, rows))
    print("\n".join(lines))
    body = "\n".join(
        [
            "## Vector leg vs the C++ Milvus Lite 2.5",
            "",
            f"Measured on {report.machine().one_line()}; {versions}, in a side folder on the path (see "
            "`benchmarks/vector_milvus_cpp.py`). Same generated data, queries and ground truth as the Milvus Lite 3 "
            "section; Milvus Lite 2.5 runs the C++ Milvus core as a server subprocess, reached over gRPC on "
            f"the same machine. Its local mode builds only FLAT, IVF_FLAT and AUTOINDEX (it refuses HNSW), so it runs "
            "IVF_FLAT with nlist 4*sqrt(n) (the engine's rule) and FLAT. "
            f"{args.queries} single queries, k={args.k}, all settings interleaved query by query in random order.",
            "",
            *lines,
            "",
            table(headers, rows),
        ]
    )
    report.write_report("vector_milvus_cpp", body, args)


if __name__ == "__main__":
    main()
