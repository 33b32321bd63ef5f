"""The shape of the code, asserted: no import cycles, no library -> benchmark edge, a CLI that
imports no torch until a command runs and only the library's public names, a public API whose
modules are not shadowed by its functions, and a CLI reference that matches the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import import_graph  # noqa: E402


def test_no_import_cycle_and_no_library_to_benchmark_edge():
    assert import_graph.problems() == []


def test_the_checker_sees_a_cycle_and_a_benchmark_edge():
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = import_graph.edges()
    assert ("freqprint_bench.tracing", False) in edges["freqprint.cli.bench"]  # seen, and allowed: on call
    assert any(t == "freqprint.stats.spectral" and top for t, top in edges["freqprint.fingerprint.layer"])


def test_architecture_md_shows_the_graph_of_the_code():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    assert import_graph.mermaid() in text


@pytest.mark.parametrize("module", ["freqprint", "freqprint.cli", "freqprint.errors", "freqprint.factory"])
def test_importing_the_package_and_the_cli_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _cli_modules() -> list[Path]:
    return sorted((ROOT / "src" / "freqprint" / "cli").glob("*.py"))


@pytest.mark.parametrize("path", _cli_modules(), ids=lambda p: p.name)
def test_cli_modules_are_thin(path):
    """Short, and every library import is of a public name of a public module, made on call."""
    tree = ast.parse(path.read_text())
    assert len(path.read_text().splitlines()) < 500
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("freqprint"):
            if node.module.startswith("freqprint.cli"):
                continue
            assert not any(part.startswith("_") for part in node.module.split(".")), f"{path.name}: {node.module}"
            assert not any(a.name.startswith("_") for a in node.names), f"{path.name}: a private name from {node.module}"
    at_top = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    at_top += [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert not [m for m in at_top if m.split(".")[0] in ("torch", "freqprint_bench")]


def test_public_names_resolve_and_modules_are_not_shadowed():
    import freqprint
    import freqprint.verification.backbone as backbone
    import freqprint.verification.provenance as provenance
    import freqprint.verification.verifier as verifier

    for name in freqprint.__all__:
        assert getattr(freqprint, name) is not None
    assert freqprint.verify is verifier.verify and verifier.VerificationReport is freqprint.VerificationReport
    assert freqprint.trace is provenance.trace and freqprint.lineage is backbone.lineage
    assert isinstance(freqprint.__version__, str)
    with pytest.raises(AttributeError):
        freqprint.no_such_name  # noqa: B018


def test_the_cli_reference_matches_the_cli(tmp_path):
    """docs/cli.md is generated from the CLI (`make cli-docs`); a changed option must show there."""
    out = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "freqprint.cli", "utils", "docs", "--name", "freqprint", "--output", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text() == (ROOT / "docs" / "cli.md").read_text()
