"""Project-level promises: the two-command quick start, CI calling the README's test command,
compose.yaml valid against the Compose specification."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, SHARED


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", section, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["scripts/demo", "scripts/test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111


def test_compose_file_is_valid() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read compose.yaml")
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed to validate compose.yaml")
    schema_path = SHARED / "compose-spec" / "compose-spec.json"
    if not schema_path.exists():
        pytest.skip(f"{schema_path} is absent: cannot validate compose.yaml against the Compose specification")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    jsonschema.Draft7Validator(json.loads(schema_path.read_text())).validate(compose)
    service = compose["services"]["imgsearch"]
    assert service["build"] == "."
    assert service["environment"]["IMGSEARCH_DATA_DIR"] == "/data"
    assert "healthcheck" in service
    es = compose["services"]["elasticsearch"]
    assert re.search(r"elasticsearch:\$\{ES_VERSION:-9\.\d+\.\d+\}$", es["image"]), es["image"]
    assert es["environment"]["discovery.type"] == "single-node"
    assert "_cluster/health" in " ".join(es["healthcheck"]["test"])
    assert any(v.startswith("es-data:") for v in es["volumes"])
    app = compose["services"]["imgsearch-es"]
    assert app["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert app["environment"]["IMGSEARCH_BACKEND"] == "elasticsearch"
    assert "elasticsearch:9200" in app["environment"]["IMGSEARCH_ELASTICSEARCH__URL"]
    gpu = compose["services"]["imgsearch-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
