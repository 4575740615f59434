"""The layout's rules, checked: apps import downward only (import-linter's contracts in
pyproject.toml), no import circles anywhere, pure modules free of Django; and every registry
entry is checked from the registry itself, so a new architecture, checkpoint or distortion
family is tested the day it is declared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from core.weights import WEIGHTS
from sr_models import archs
from sr_models.checkpoints import CHECKPOINTS
from sr_models.distortions import CATEGORIES, DEFAULT_CATALOGUE, FAMILIES, load_catalogue

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "sr_models", "annotation", "iqa", "dashboard", "pipal_site")


def test_the_import_contracts_hold():
    """Layers core < sr_models < annotation < iqa < dashboard < pipal_site, and the pure modules
    free of Django, as pyproject.toml's [tool.importlinter] states them."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's strongly connected components of the import graph with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def test_no_module_imports_itself_through_others():
    """No import circles, between apps or inside one (imports inside functions count too)."""
    graph = grimp.build_graph(*APPS, include_external_packages=False, cache_dir=None)
    # A package's __init__ re-exporting its own modules is how a package offers its names, not a
    # circle between modules: edges from a package to its own children are left out.
    for module in list(graph.modules):
        for child in graph.find_children(module):
            if graph.direct_import_exists(importer=module, imported=child):
                graph.remove_import(importer=module, imported=child)
    circles = _strongly_connected(graph)
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in circles)


# --- every registry entry, from the registry ------------------------------------------------


@pytest.mark.parametrize("name", archs.ARCHS.names())
def test_every_architecture_builds_at_its_scales_and_reads_its_own_layout(name):
    spec = archs.ARCHS.get(name)
    assert spec.paper and spec.scales and spec.color in ("rgb", "y")
    for scale in spec.scales[:1]:  # one scale builds the family's code; the SR tests run them all
        model = archs.build(name, scale)
        state = model.state_dict()
        assert set(spec.convert(state)) == set(state)


@pytest.mark.parametrize("name", CHECKPOINTS.names())
def test_every_checkpoint_is_a_weights_record_with_its_source(name):
    checkpoint = CHECKPOINTS.get(name)
    assert WEIGHTS.get(name) is checkpoint  # SrModelsConfig.ready() registered it
    assert checkpoint.source and checkpoint.licence and checkpoint.file and checkpoint.layout
    assert checkpoint.sha256 is None or len(checkpoint.sha256) == 64  # never a made-up short hash
    for part in checkpoint.parts or (name,):
        assert CHECKPOINTS.get(part).scale in archs.ARCHS.get(checkpoint.arch).scales
    assert f"import_weights {name if not checkpoint.parts else checkpoint.parts[0]}" in (
        CHECKPOINTS.get(checkpoint.parts[0]).how_to_get() if checkpoint.parts else checkpoint.how_to_get()
    )


@pytest.mark.parametrize("name", WEIGHTS.names())
def test_every_weights_record_says_where_it_comes_from(name):
    record = WEIGHTS.get(name)
    assert record.name == name and record.label and record.source and record.licence
    assert record.sha256 is None or len(record.sha256) == 64
    assert all(part in WEIGHTS for part in record.parts)
    assert "import_weights" in record.how_to_get() or record.parts


@pytest.mark.parametrize("name", FAMILIES.names())
def test_every_distortion_family_declares_a_category_and_a_schema(name):
    family = FAMILIES.get(name)
    assert family.category in CATEGORIES and family.subtype and family.summary
    described = family.describe()
    assert described["name"] == name and set(described["params"]) == set(family.params)


def test_every_family_has_a_level_in_the_default_catalogue():
    catalogued = {entry.family for entry in load_catalogue(DEFAULT_CATALOGUE)}
    assert catalogued == set(FAMILIES.names())
