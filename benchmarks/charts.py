"""PNG charts for BENCHMARKS.md (matplotlib, headless).

Charts live in `docs/benchmarks/` and are referenced from the report with relative links, so they
render on GitHub and in any Markdown viewer. matplotlib comes with the `bench` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.report import ROOT

CHART_DIR = ROOT / "docs" / "benchmarks"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("charts need matplotlib: pip install -e '.[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def chart(
    name: str,
    title: str,
    *,
    width: float = 7.0,
    height: float = 4.5,
    ncols: int = 1,
    chart_dir: Path | None = None,
) -> Iterator[Any]:
    """Yield (figure, axes) for a chart; on exit save `<chart_dir>/<name>.png` and close it.

    `chart_dir` defaults to `docs/benchmarks/` (tests pass a temporary directory).

    `axes` is a single Axes when ncols == 1, else a sequence of them.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols if ncols > 1 else width, height), squeeze=True)
    fig.suptitle(title)
    try:
        yield fig, axes
        for ax in axes if ncols > 1 else [axes]:
            ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        out = chart_dir or CHART_DIR
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{name}.png", dpi=110)
    finally:
        plt.close(fig)


def link(name: str, alt: str) -> str:
    """Markdown image link to chart `name`, relative to BENCHMARKS.md."""
    path: Path = (CHART_DIR / f"{name}.png").relative_to(ROOT)
    return f"![{alt}]({path.as_posix()})"
