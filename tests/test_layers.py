"""The layers point one way, read from the source with `ast`: data -> models -> training -> evaluation ->
registry/serving -> CLI, nothing in `src/` imports Prefect or the flows (only the CLI may start a flow), and
no two modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers.paths import REPO

PACKAGE = REPO / "src" / "mnistgen"
# Each top-level part of the package and its floor: a module may import only from its floor or below.
FLOORS = {
    "errors": 0,
    "config": 0,
    "settings": 0,  # params.yaml as typed, frozen sections: every field with its rule
    "runtime": 0,
    "figures": 0,
    "images": 0,
    "folders": 0,  # replacing a folder in one step: run folders, reports
    "locks": 0,  # one process at a time: a training of a variant, the data stage, a registration
    "data": 1,
    "models": 2,
    # The saved generator -> images, read by training (grids), evaluation and the registered model alike:
    # the bottom of serving, beside the models whose files it reads.
    "serving.sampler": 2,
    "lineage": 3,
    "tracking": 3,
    "datasets": 3,  # MNIST's splits as MLflow run inputs: what training, evaluation and the classifier read
    "training": 4,
    "evaluation": 5,
    "serving": 6,
    "registry": 6,
    "model_card": 6,  # the registered version's description, written by the registry
    "prefect_api": 7,  # the pipeline's Prefect server, started by the CLI without importing Prefect
    "cli": 7,
    "__main__": 7,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-local imports included): for
    `from a.b import c`, `a.b.c` (the module c, or the name c of module a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (`mnistgen.x.y` as `x.y`)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            if imported.startswith("mnistgen."):
                target = imported.removeprefix("mnistgen.")
                while target and target not in modules:  # a name of module x: the module x
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _floor(module: str) -> int:
    """The floor of the longest entry of FLOORS that names the module or a package above it."""
    parts = module.split(".")
    return next(
        FLOORS[".".join(parts[:n])] for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in FLOORS
    )


def test_every_part_of_the_package_has_a_floor() -> None:
    assert {name.split(".")[0] for name in _graph() if name} <= set(FLOORS)


def test_nothing_below_the_cli_imports_prefect_or_the_flows() -> None:
    offenders = {
        _module_name(path): sorted(n for n in _imports(path) if n.split(".")[0] in ("prefect", "flows"))
        for path in PACKAGE.rglob("*.py")
        if _module_name(path) != "cli"
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_imports_point_down_the_layers() -> None:
    upward = {
        (module, target)
        for module, targets in _graph().items()
        if module
        for target in targets
        if target and _floor(target) > _floor(module)
    }
    assert upward == set()


def test_no_two_modules_import_each_other() -> None:
    graph = _graph()
    pairs = {
        tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, set())
    }
    assert pairs == set()
