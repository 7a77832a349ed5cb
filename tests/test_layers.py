"""data_builders is the lower layer: the plugin imports it, never the other way round, so `nextai-data` runs
without Axolotl and a change in the plugin cannot break a build."""

from __future__ import annotations

import ast

from axolotl_launch import ROOT

UPPER = "axolotl_nextai"


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in `tree`, at module level or inside a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def test_data_builders_import_nothing_from_the_plugin():
    upward = [f"{path.relative_to(ROOT)}:{line}: {module}"
              for path in sorted((ROOT / "data_builders").rglob("*.py"))
              for line, module in imported_modules(ast.parse(path.read_text()))
              if module == UPPER or module.startswith(UPPER + ".")]
    assert not upward, "data_builders imports the plugin:\n" + "\n".join(upward)


def test_the_walk_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from axolotl_nextai.alpaca import load\n    import axolotl_nextai\n")
    assert imported_modules(tree) == [(2, "axolotl_nextai.alpaca"), (3, "axolotl_nextai")]
