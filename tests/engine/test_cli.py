"""CLI tests: `engine.cli.main([...])` in-process (stdout/stderr through capsys), plus a few runs of the
installed `imgsearch` console script in a subprocess for the entry point and real exit codes.

Every test runs in its own working directory with no `IMGSEARCH_*` variables, so a command that ignores
`--data-dir` writes into that directory (and is caught), never into the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main
from engine.documents import content_id
from engine.engine import Engine
from engine.openapi import openapi_spec
from engine.settings import Settings
from tests.conftest import CHEAP_ENRICHERS_ENV, image_bytes, noise_image, shared_path

Cap = pytest.CaptureFixture[str]
SEARCH_SCHEMA = openapi_spec()["components"]["schemas"]["SearchResponse"]
SUMMARY = re.compile(
    r"^(?P<seen>\d+) files in [\d.]+s \([\d.]+ images/s\): (?P<added>\d+) added, (?P<replaced>\d+) replaced, "
    r"(?P<unchanged>\d+) unchanged, (?P<failed>\d+) failed$"
)
# name -> (path relative to the folder, bytes). The noise seeds have no red, so `red` selects the red solids.
FILES: dict[str, tuple[str, bytes]] = {
    "red": ("red.png", image_bytes((255, 0, 0), size=(64, 48))),
    "red-tall": ("red_tall.png", image_bytes((220, 10, 10), size=(40, 60))),
    "blue": ("blue.png", image_bytes((0, 0, 255), size=(64, 48))),
    "green": ("green.jpg", image_bytes((0, 200, 0), size=(64, 48), fmt="JPEG")),
    "noise-1": ("nested/deeper/noise1.png", image_bytes(noise_image(1))),
    "noise-3": ("nested/noise3.png", image_bytes(noise_image(3))),
}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Indexed:
    folder: Path
    data_dir: Path
    ids: dict[str, str]  # name -> id
    paths: dict[str, Path]  # name -> file

    def search(self, capsys: Cap, *args: str) -> dict[str, Any]:
        run = cli(capsys, "search", *args, "--json", "--data-dir", str(self.data_dir))
        assert run.code == EXIT_OK, run.err
        body = run.json()
        jsonschema.validate(body, SEARCH_SCHEMA)
        return dict(body)


def cli(capsys: Cap, *argv: str) -> Run:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def ids_of(body: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in body["hits"]]


def documents(data_dir: Path) -> int:
    with Engine.open(Settings(data_dir=data_dir)) as engine:
        return engine.store.count()


def write_folder(folder: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name, (rel, data) in FILES.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[name] = path
    (folder / "README.txt").write_text("not an image, and not picked up from a folder\n")
    return paths


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory and no IMGSEARCH_* settings from the caller's environment."""
    for key in list(os.environ):
        if key.startswith("IMGSEARCH_") and key != CHEAP_ENRICHERS_ENV:
            monkeypatch.delenv(key)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    write_folder(folder)
    return folder


@pytest.fixture
def indexed(tmp_path: Path, folder: Path, capsys: Cap) -> Indexed:
    data_dir = tmp_path / "index"
    run = cli(capsys, "ingest", str(folder), "--data-dir", str(data_dir), "--no-progress")
    assert run.code == EXIT_OK, run.out + run.err
    ids = {name: content_id(data) for name, (_, data) in FILES.items()}
    paths = {name: folder / rel for name, (rel, _) in FILES.items()}
    return Indexed(folder=folder, data_dir=data_dir, ids=ids, paths=paths)


# -- ingest ----------------------------------------------------------------------------------------------


def test_ingest_folder(tmp_path: Path, folder: Path, capsys: Cap, isolated: Path) -> None:
    data_dir = tmp_path / "index"
    run = cli(capsys, "ingest", str(folder), "--data-dir", str(data_dir), "--no-progress")
    assert run.code == EXIT_OK
    lines = run.out.splitlines()
    assert len(lines) == 1
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    assert match.groupdict() == {"seen": "6", "added": "6", "replaced": "0", "unchanged": "0", "failed": "0"}
    assert documents(data_dir) == len(FILES)
    assert (data_dir / "imgsearch.sqlite3").is_file()
    assert not (isolated / ".imgsearch").exists()
    # A second run changes nothing.
    again = cli(capsys, "ingest", str(folder), "--data-dir", str(data_dir), "--no-progress")
    assert again.code == EXIT_OK
    match = SUMMARY.match(again.out.strip())
    assert match and (match["added"], match["unchanged"]) == ("0", "6")


def test_ingest_json_report(tmp_path: Path, folder: Path, capsys: Cap) -> None:
    run = cli(
        capsys,
        "ingest",
        str(folder / "nested"),
        str(folder / "red.png"),
        "--json",
        "--data-dir",
        str(tmp_path / "index"),
    )
    assert run.code == EXIT_OK
    report = run.json()
    assert (report["seen"], report["added"], report["replaced"], report["unchanged"]) == (3, 3, 0, 0)
    assert report["failed"] == []


def test_ingest_glob(tmp_path: Path, folder: Path, capsys: Cap) -> None:
    run = cli(capsys, "ingest", str(folder / "*.png"), "--json", "--data-dir", str(tmp_path / "index"))
    assert run.code == EXIT_OK
    assert run.json()["added"] == 3  # red.png, red_tall.png, blue.png (not green.jpg, not nested/)


def test_ingest_with_a_bad_file_is_partial(tmp_path: Path, folder: Path, capsys: Cap) -> None:
    bad = folder / "broken.jpg"
    bad.write_text("this is not a JPEG\n")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    data_dir = tmp_path / "index"
    run = cli(capsys, "ingest", str(folder), "--data-dir", str(data_dir), "--no-progress")
    assert run.code == EXIT_PARTIAL == 3
    lines = run.out.splitlines()
    match = SUMMARY.match(lines[0])
    assert match and (match["seen"], match["added"], match["failed"]) == ("8", "6", "2")
    assert f"  FAILED {bad.resolve()}: not a recognised image format (is it really an image?)" in lines
    assert any(line.startswith(f"  FAILED {empty.resolve()}: empty file") for line in lines)
    assert documents(data_dir) == len(FILES)


def test_ingest_missing_path_is_reported(tmp_path: Path, folder: Path, capsys: Cap) -> None:
    missing = tmp_path / "no-such-folder"
    data_dir = tmp_path / "index"
    run = cli(
        capsys,
        "ingest",
        str(missing),
        str(folder / "red.png"),
        str(tmp_path / "*.gif"),
        "--data-dir",
        str(data_dir),
        "--no-progress",
    )
    assert run.code == EXIT_PARTIAL
    assert f"  FAILED {missing}: no such file or folder" in run.out.splitlines()
    assert f"  FAILED {tmp_path / '*.gif'}: glob matched no files" in run.out.splitlines()
    match = SUMMARY.match(run.out.splitlines()[0])
    assert match and (match["added"], match["failed"]) == ("1", "2")
    assert documents(data_dir) == 1


def test_ingest_with_manifest_makes_titles_searchable(tmp_path: Path, folder: Path, capsys: Cap) -> None:
    manifest = folder / "manifest.csv"
    manifest.write_text("path,title,tags,licence\nblue.png,Lighthouse at dusk,coast;sea,CC-BY-4.0\n")
    data_dir = tmp_path / "index"
    run = cli(capsys, "ingest", str(folder), "--manifest", str(manifest), "--data-dir", str(data_dir), "--no-progress")
    assert run.code == EXIT_OK
    body = Indexed(folder, data_dir, {}, {}).search(capsys, "lighthouse", "--filter", "licence=cc-by-4.0")
    assert ids_of(body) == [content_id(FILES["blue"][1])]
    hit = body["hits"][0]
    assert (hit["title"], hit["tags"]) == ("Lighthouse at dusk", ["coast", "sea"])
    assert hit["licence"] == "CC-BY-4.0"


def test_ingest_with_bad_manifest_is_an_error(tmp_path: Path, folder: Path, capsys: Cap) -> None:
    manifest = folder / "manifest.jsonl"
    manifest.write_text('{"path": "red.png", "title": "Red"}\n{not json\n')
    data_dir = str(tmp_path / "index")
    run = cli(capsys, "ingest", str(folder), "--manifest", str(manifest), "--data-dir", data_dir)
    assert run.code == EXIT_ERROR
    assert run.err.startswith("imgsearch: error: ")
    assert f"{manifest}:2" in run.err and "not valid JSON" in run.err


# -- search ----------------------------------------------------------------------------------------------


def test_search_json_shape(indexed: Indexed, capsys: Cap) -> None:
    run = cli(capsys, "search", "red", "--json", "--facet", "colour", "--data-dir", str(indexed.data_dir))
    assert run.code == EXIT_OK
    assert run.out.count("\n") == 1  # one JSON object on one line
    body = json.loads(run.out)
    assert {"query_id", "total", "hits", "facets"} <= set(body)
    assert isinstance(body["query_id"], str) and re.fullmatch(r"[0-9a-f]{32}", body["query_id"])
    assert body["total"] == 2
    assert set(ids_of(body)) == {indexed.ids["red"], indexed.ids["red-tall"]}
    for hit in body["hits"]:
        assert {"id", "path", "score", "signals"} <= set(hit)
        assert isinstance(hit["score"], float) and hit["score"] > 0
        assert set(hit["signals"]) == {"bm25", "rank.text", "fused"}
        assert all(isinstance(v, int | float) for v in hit["signals"].values())
    by_id = {hit["id"]: hit for hit in body["hits"]}
    assert by_id[indexed.ids["red"]]["path"] == str(indexed.paths["red"].resolve())
    assert body["facets"] == {"colour": {"red": 2}}
    for counts in body["facets"].values():
        assert all(isinstance(v, str) and isinstance(c, int) for v, c in counts.items())


def test_search_text_output(indexed: Indexed, capsys: Cap) -> None:
    run = cli(
        capsys,
        "search",
        "blue",
        "--filter",
        "colour=blue",
        "--facet",
        "format",
        "--facet",
        "colour",
        "--data-dir",
        str(indexed.data_dir),
    )
    assert run.code == EXIT_OK
    lines = run.out.splitlines()
    header = r"^3 results \(legs: \{'text': 3\}; [\d.]+ ms; query_id [0-9a-f]{32}\)$"
    assert re.match(header, lines[0]), lines[0]
    ranked = [line for line in lines if re.match(r"^\s+\d+\. ", line)]
    assert len(ranked) == 3
    assert any(f" {indexed.ids['blue']} {indexed.paths['blue'].resolve()}" in line for line in ranked)
    assert re.match(r"^\s+1\. \d\.\d{5} [0-9a-f]{32} /", ranked[0])
    assert any(line.strip().startswith("bm25=") and "rank.text=1" in line for line in lines)
    assert "facet format: png (3)" in lines
    assert any(line.startswith("facet colour: blue (3)") for line in lines)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["colour=red"], {"red", "red-tall"}),
        (["colour=red", "orientation=portrait"], {"red-tall"}),
        (["format=jpeg"], {"green"}),
        (["width>=90"], {"noise-1", "noise-3"}),
        (["colour!=red", "height<=48"], {"blue", "green"}),
    ],
)
def test_search_filters(indexed: Indexed, capsys: Cap, filters: list[str], expected: set[str]) -> None:
    args = [arg for f in filters for arg in ("--filter", f)]
    body = indexed.search(capsys, *args, "--k", "50")
    assert set(ids_of(body)) == {indexed.ids[name] for name in expected}
    assert body["total"] == len(expected)


def test_search_paging(indexed: Indexed, capsys: Cap) -> None:
    whole = ids_of(indexed.search(capsys, "--k", "6"))
    first = ids_of(indexed.search(capsys, "--k", "3"))
    second = ids_of(indexed.search(capsys, "--k", "3", "--offset", "3"))
    assert len(whole) == 6 and first + second == whole


def test_search_like(indexed: Indexed, capsys: Cap) -> None:
    like = indexed.ids["noise-1"]
    body = indexed.search(capsys, "--like", like, "--k", "50")
    assert like not in ids_of(body)
    assert set(ids_of(body)) == set(indexed.ids.values()) - {like}
    assert ids_of(body)[0] == indexed.ids["noise-3"]  # the other smooth-noise image looks most alike
    assert all("cosine.colour" in hit["signals"] for hit in body["hits"])


def test_search_image(indexed: Indexed, capsys: Cap, tmp_path: Path) -> None:
    query = tmp_path / "query.png"  # the same bytes as an indexed file, at another path
    query.write_bytes(FILES["noise-3"][1])
    body = indexed.search(capsys, "--image", str(query), "--k", "3")
    first = body["hits"][0]
    assert first["id"] == indexed.ids["noise-3"]
    assert first["signals"]["hamming.phash"] == 0
    assert first["signals"]["cosine.colour"] == pytest.approx(1.0, abs=1e-3)
    assert len(body["hits"]) == 3


def test_search_image_with_filter(indexed: Indexed, capsys: Cap) -> None:
    body = indexed.search(capsys, "--image", str(indexed.paths["noise-3"]), "--filter", "format=jpeg")
    assert ids_of(body) == [indexed.ids["green"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "shape=round"], "unknown filter field 'shape'"),
        (["--filter", "width>=wide"], "filter 'width' needs a number, got 'wide'"),
        (["--facet", "size"], "unknown facet 'size'"),
        (["--k", "0"], "k must be between 1 and 1000, got 0"),
        (["--offset", "-5"], "offset must be between 0 and 10000, got -5"),
        (["--like", "f" * 32], f"no image with id {'f' * 32!r}"),
        (["--image", "/nonexistent/query.png"], "cannot read --image /nonexistent/query.png"),
    ],
)
def test_search_errors_exit_1(indexed: Indexed, capsys: Cap, args: list[str], message: str) -> None:
    run = cli(capsys, "search", *args, "--data-dir", str(indexed.data_dir))
    assert run.code == EXIT_ERROR == 1
    assert run.out == ""
    assert run.err.startswith("imgsearch: error: ")
    assert message in run.err
    assert run.err.count("\n") == 1  # one line, no traceback


def test_search_image_that_is_not_an_image(indexed: Indexed, capsys: Cap) -> None:
    text = indexed.folder / "README.txt"
    run = cli(capsys, "search", "--image", str(text), "--data-dir", str(indexed.data_dir))
    assert run.code == EXIT_ERROR
    assert run.err.startswith("imgsearch: error: not a recognised image format")


def test_image_and_like_are_mutually_exclusive(indexed: Indexed, capsys: Cap) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["search", "--image", str(indexed.paths["red"]), "--like", indexed.ids["blue"]])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# -- stats, delete ---------------------------------------------------------------------------------------


def test_stats(indexed: Indexed, capsys: Cap) -> None:
    run = cli(capsys, "stats", "--data-dir", str(indexed.data_dir))
    assert run.code == EXIT_OK
    stats = run.json()
    assert run.out.count("\n") > 5  # pretty-printed
    assert stats["store"]["documents"] == len(FILES)
    assert stats["store"]["backend"] == "sqlite"
    assert stats["vectors"]["colour"]["count"] == len(FILES)
    assert stats["phash"] == len(FILES)
    assert stats["enrichers"] == {"colour": "1", "phash": "1"}
    assert stats["data_dir"] == str(indexed.data_dir)
    compact = cli(capsys, "stats", "--json", "--data-dir", str(indexed.data_dir))
    assert compact.code == EXIT_OK and compact.out.count("\n") == 1
    assert compact.json()["store"]["documents"] == len(FILES)


def test_delete_then_search_no_longer_returns_it(indexed: Indexed, capsys: Cap) -> None:
    gone = indexed.ids["red"]
    run = cli(capsys, "delete", gone, "--data-dir", str(indexed.data_dir))
    assert (run.code, run.out) == (EXIT_OK, "deleted 1 image(s)\n")
    assert set(ids_of(indexed.search(capsys, "red"))) == {indexed.ids["red-tall"]}
    assert gone not in ids_of(indexed.search(capsys, "--k", "50"))
    assert gone not in ids_of(indexed.search(capsys, "--like", indexed.ids["red-tall"], "--k", "50"))
    assert gone not in ids_of(indexed.search(capsys, "--image", str(indexed.paths["red"]), "--k", "50"))
    assert documents(indexed.data_dir) == len(FILES) - 1
    # Deleting it again, or an unknown id alongside a known one, is a partial success.
    again = cli(capsys, "delete", gone, "--data-dir", str(indexed.data_dir))
    assert (again.code, again.out) == (EXIT_PARTIAL, "deleted 0 image(s); 1 id(s) were not indexed\n")
    mixed = cli(capsys, "delete", indexed.ids["blue"], "f" * 32, "--data-dir", str(indexed.data_dir))
    assert (mixed.code, mixed.out) == (EXIT_PARTIAL, "deleted 1 image(s); 1 id(s) were not indexed\n")
    assert documents(indexed.data_dir) == len(FILES) - 2


# -- where the index lives -------------------------------------------------------------------------------


def test_data_dir_from_environment(
    tmp_path: Path, folder: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    env_dir = tmp_path / "from-env"
    monkeypatch.setenv("IMGSEARCH_DATA_DIR", str(env_dir))
    assert cli(capsys, "ingest", str(folder), "--no-progress").code == EXIT_OK
    assert documents(env_dir) == len(FILES)
    assert not (isolated / ".imgsearch").exists()
    body = json.loads(cli(capsys, "search", "red", "--json").out)
    assert body["total"] == 2
    # An explicit --data-dir wins over the environment.
    other = tmp_path / "explicit"
    assert cli(capsys, "ingest", str(folder / "blue.png"), "--data-dir", str(other)).code == EXIT_OK
    assert documents(other) == 1 and documents(env_dir) == len(FILES)


def test_default_data_dir_is_dot_imgsearch(folder: Path, capsys: Cap, isolated: Path) -> None:
    assert cli(capsys, "ingest", str(folder / "red.png")).code == EXIT_OK
    assert documents(isolated / ".imgsearch") == 1


@pytest.mark.parametrize("where", ["after", "before"])
def test_data_dir_before_or_after_the_subcommand(
    tmp_path: Path, folder: Path, capsys: Cap, isolated: Path, where: str
) -> None:
    data_dir = tmp_path / "index"
    option = ["--data-dir", str(data_dir)]
    argv = [*option, "ingest", str(folder)] if where == "before" else ["ingest", str(folder), *option]
    assert cli(capsys, *argv, "--no-progress").code == EXIT_OK
    assert not (isolated / ".imgsearch").exists(), f"--data-dir {where} the subcommand was ignored"
    assert documents(data_dir) == len(FILES)
    stats_argv = [*option, "stats"] if where == "before" else ["stats", *option]
    assert cli(capsys, *stats_argv).json()["store"]["documents"] == len(FILES)


def test_serve_builds_the_app_for_the_data_dir(tmp_path: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from starlette.applications import Starlette

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    data_dir = tmp_path / "served"
    run = cli(capsys, "serve", "--port", "8765", "--data-dir", str(data_dir))
    assert run.code == EXIT_OK
    assert len(calls) == 1
    assert isinstance(calls[0]["app"], Starlette)
    assert (calls[0]["host"], calls[0]["port"]) == ("127.0.0.1", 8765)
    assert f"imgsearch serving {data_dir} on http://127.0.0.1:8765" in run.err


def test_invalid_settings_are_an_error(capsys: Cap, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMGSEARCH_SEARCH__MAX_K", "lots")
    run = cli(capsys, "stats", "--data-dir", str(tmp_path / "index"))
    assert run.code == EXIT_ERROR
    assert run.err.startswith("imgsearch: error: invalid settings")
    assert "max_k" in run.err


# -- real data -------------------------------------------------------------------------------------------


def test_real_photos_reverse_search(tmp_path: Path, capsys: Cap) -> None:
    samples = shared_path("samples")
    data_dir = tmp_path / "index"
    run = cli(capsys, "ingest", str(samples), "--data-dir", str(data_dir), "--json")
    assert run.code == EXIT_OK
    assert run.json()["added"] == 3
    body = Indexed(samples, data_dir, {}, {}).search(capsys, "--image", str(samples / "bus.jpg"), "--k", "3")
    assert body["hits"][0]["path"] == str((samples / "bus.jpg").resolve())
    assert body["hits"][0]["signals"]["hamming.phash"] == 0
    text = Indexed(samples, data_dir, {}, {}).search(capsys, "zidane")
    assert [hit["path"] for hit in text["hits"]] == [str((samples / "zidane.jpg").resolve())]


# -- the installed console script ------------------------------------------------------------------------


def _script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the `imgsearch` console script (installed next to this Python) with a clean environment."""
    script = Path(sys.executable).with_name("imgsearch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSEARCH_") or k == CHEAP_ENRICHERS_ENV}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_console_script_exit_codes(tmp_path: Path, folder: Path, isolated: Path) -> None:
    data = str(tmp_path / "index")
    ok = _script("ingest", str(folder), "--data-dir", data, "--no-progress", cwd=isolated)
    assert ok.returncode == 0, ok.stderr
    assert SUMMARY.match(ok.stdout.strip())
    assert ok.stderr == ""

    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    partial = _script("ingest", str(folder), "--data-dir", data, "--no-progress", cwd=isolated)
    assert partial.returncode == 3
    assert f"FAILED {(folder / 'broken.png').resolve()}:" in partial.stdout

    found = _script("search", "red", "--json", "--data-dir", data, cwd=isolated)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["total"] == 2

    bad = _script("search", "--filter", "shape=round", "--data-dir", data, cwd=isolated)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("imgsearch: error: unknown filter field 'shape'")
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path: Path, isolated: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSEARCH_") or k == CHEAP_ENRICHERS_ENV}
    argv = [sys.executable, "-m", "engine.cli", "stats", "--json", "--data-dir", str(tmp_path / "index")]
    result = subprocess.run(argv, cwd=isolated, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["store"]["documents"] == 0
    usage = subprocess.run(
        [sys.executable, "-m", "engine.cli"],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert usage.returncode == 2
    assert "usage: imgsearch" in usage.stderr


def test_rebuild_index_is_for_elasticsearch(tmp_path: Path, capsys: Cap) -> None:
    assert main(["reindex", "--rebuild-index", "--data-dir", str(tmp_path / "d")]) == 1
    assert "--rebuild-index applies to the Elasticsearch backend" in capsys.readouterr().err
    assert main(["reindex", "--data-dir", str(tmp_path / "d")]) == 1
    assert "--stale" in capsys.readouterr().err
