"""The public namespace: every name reachable as `jd.<name>`, documented in README's table, and
no import cycles between the private modules."""

import re
from pathlib import Path

import jaxdyn as jd

README = Path(__file__).parent.parent / "README.md"


def public_names(module):
    return sorted(n for n in dir(module) if not n.startswith("_"))


def test_every_public_name_is_in_the_readme_table():
    text = README.read_text()
    table = text[text.index("## What is here"):]
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", table))
    missing = [n for n in public_names(jd) if n not in documented]
    assert not missing, f"undocumented public names: {missing}"


def test_entry_points_are_functions_not_shadowed_modules():
    for name in ("fixed_points", "simulate", "train"):
        assert callable(getattr(jd, name)), name
    assert isinstance(jd.NewtonQ(), jd.AbstractNewtonStrategy)
    assert jd.RESULTS.slow_point is not None


def _module_graph():
    """Top-level imports between jaxdyn's modules (imports inside functions are lazy and do
    not count), from the source."""
    import ast

    root = Path(jd.__file__).parent
    graph = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # `from . import rnn`
                    deps.update(f"{target}.{a.name}" for a in node.names)
                else:
                    deps.add(target)
        graph[name] = deps
    return graph


def test_no_import_cycles():
    graph = _module_graph()
    # A package's __init__ only re-exports its modules; an edge into a package is an edge into
    # each module it re-exports, which the walk follows through the package's own edges.
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        if state.get(node) == "open":
            raise AssertionError(f"import cycle: {' -> '.join(path + [node])}")
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if dep in graph and not (dep == "jaxdyn" or node == "jaxdyn"):
                visit(dep, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])
