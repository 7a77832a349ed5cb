"""The one-way walls, checked on the source's imports. data_builders is the lower layer: the plugin imports
it, never the other way round, so `nextai-data` runs without Axolotl and a change in the plugin cannot break a
build. Inside the plugin, one level down, each package imports only what sits below it (`PLUGIN_WALLS`)."""

from __future__ import annotations

import ast

from axolotl_launch import ROOT

UPPER = "axolotl_nextai"
# package -> the plugin's packages and modules it must not import. models/ (a model's shape, its files) is
# read by every other package and reads none of them; checks/ decides before the model loads and levers/
# builds on it, never the reverse; run/'s callbacks and reports stand on models/ alone; serve/ and eval/ load
# a trained adapter without the training side (checks, run, levers, the hooks); and only the package's
# __init__ imports the hooks.
TRAINING = ("checks", "run", "levers", "plugin")
PLUGIN_WALLS = {
    "models": TRAINING + ("serve", "eval"),
    "checks": ("levers", "serve", "eval", "plugin"),
    "run": ("checks", "levers", "serve", "eval", "plugin"),
    "levers": ("run", "serve", "eval", "plugin"),
    "serve": TRAINING,
    "eval": TRAINING,
}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of everything `tree` imports, at module level or inside a function: `from a import
    b` gives `a.b`, so a package imported by name is seen as well as one imported from."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def imports_of(folder: str, banned: tuple[str, ...]) -> list[str]:
    """`file:line: module` for every import under `folder` of `banned` or anything inside one of them."""
    return [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, module in imported_modules(ast.parse(path.read_text()))
        if any(module == name or module.startswith(name + ".") for name in banned)
    ]


def test_data_builders_import_nothing_from_the_plugin():
    upward = imports_of("data_builders", (UPPER,))
    assert not upward, "data_builders imports the plugin:\n" + "\n".join(upward)


def test_inside_the_plugin_each_package_imports_only_what_sits_below_it():
    upward = [
        f"{hit} (walled off from {package}/)"
        for package, banned in PLUGIN_WALLS.items()
        for hit in imports_of(f"{UPPER}/{package}", tuple(f"{UPPER}.{name}" for name in banned))
    ]
    assert not upward, "a package of the plugin imports one above it:\n" + "\n".join(upward)


def test_every_package_of_the_plugin_has_its_walls():
    packages = {path.parent.name for path in (ROOT / UPPER).glob("*/__init__.py")}
    assert packages == set(PLUGIN_WALLS)


def test_the_walk_sees_imports_inside_functions_and_packages_imported_by_name():
    tree = ast.parse(
        "def f():\n    from axolotl_nextai.alpaca import load\n    import axolotl_nextai\n"
        "from axolotl_nextai import checks\n"
    )
    assert imported_modules(tree) == [
        (4, "axolotl_nextai.checks"),
        (2, "axolotl_nextai.alpaca.load"),
        (3, "axolotl_nextai"),
    ]
    assert imports_of("axolotl_nextai/models", ("axolotl_nextai.models",))  # the filter finds what is there
