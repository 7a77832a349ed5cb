"""Imports run one way. data_builders is the lower layer: the plugin imports it, never the other way round, so
`nextai-data` runs without Axolotl and a change in the plugin cannot break a build. Inside the plugin, models/ (what
a model is: architectures, footprints, checkpoints) is the floor its other folders stand on."""

from __future__ import annotations

import ast

import pytest
from axolotl_launch import ROOT

# lower folder -> the packages it must not import
WALLS = {
    "data_builders": ["axolotl_nextai"],
    "axolotl_nextai/models": [f"axolotl_nextai.{upper}" for upper in ("checks", "run", "levers", "serve", "eval")],
}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in `tree`, at module level or inside a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("lower", list(WALLS))
def test_a_lower_folder_imports_nothing_from_above_it(lower):
    upward = [f"{path.relative_to(ROOT)}:{line}: {module}"
              for path in sorted((ROOT / lower).rglob("*.py"))
              for line, module in imported_modules(ast.parse(path.read_text()))
              if any(module == upper or module.startswith(upper + ".") for upper in WALLS[lower])]
    assert not upward, f"{lower} imports from above it:\n" + "\n".join(upward)


def test_the_walk_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from axolotl_nextai.alpaca import load\n    import axolotl_nextai\n")
    assert imported_modules(tree) == [(2, "axolotl_nextai.alpaca"), (3, "axolotl_nextai")]
