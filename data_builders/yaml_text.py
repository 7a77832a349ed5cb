"""A bounded YAML reader for mixtures and recipes: PyYAML's safe loader, plus three refusals it lacks.

- Aliases expanding past `MAX_VALUES`: a 494-byte file of nested anchors (`b: [*a, *a, ...]`, ten levels)
  loads as a few shared lists, but anything that walks it (pydantic, Axolotl's DictDefault, an error message's
  repr) walks 10^10 values; it took 43 s and 3.3 GB at five levels and never finished at ten.
- Nesting deeper than `json_text.MAX_DEPTH`: PyYAML composes recursively, so a few thousand `[` were a
  RecursionError traceback.
- A key given twice in one mapping: YAML forbids it, PyYAML keeps the last one without a word (`lora_r: 4`
  then `lora_r: 64` trained at 64). Keys merged in with `<<:` may be overridden, as YAML's merge says.

Every refusal names the file:line, as `errors.yaml_problem` does for PyYAML's own errors.
"""

from __future__ import annotations

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from data_builders.errors import DataError, yaml_problem
from data_builders.json_text import MAX_DEPTH, lone_surrogate

MAX_VALUES = 100_000  # values after aliases are expanded; a recipe has ~100, a mixture ~50
MERGE = "tag:yaml.org,2002:merge"


class Refused(ComposerError):
    """Valid YAML that a mixture or recipe must not be; the mark says where."""

    def __init__(self, problem: str, mark):
        super().__init__(None, None, problem, mark)


class BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` refusing duplicate keys and deep nesting while it composes."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise Refused(f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], ScalarNode] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == MERGE:
                continue
            earlier = first.setdefault((key.tag, key.value), key)
            if earlier is not key:
                raise Refused(
                    f"key `{key.value}` given twice (first at line {earlier.start_mark.line + 1})",
                    key.start_mark,
                )
        return node


def expanded_values(root) -> int:
    """How many values `root` holds with every alias expanded, stopping once past `MAX_VALUES`; Refused for
    that, or for an alias inside its own anchor."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise Refused("an alias refers to the value that contains it", node.start_mark)
        open_nodes.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_VALUES:
                raise Refused(
                    f"aliases expand it to more than {MAX_VALUES:,} values; write the values out",
                    child.start_mark,
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(text: str, where: str):
    """The one document of `text`, safely loaded and bounded (see the module docstring); a DataError naming
    `where`:line otherwise."""
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_values(node)
        value = loader.construct_document(node)
    except Refused as err:
        raise DataError(f"{where}:{err.problem_mark.line + 1}: {err.problem}") from None
    except yaml.YAMLError as err:
        raise DataError(yaml_problem(where, err)) from None
    finally:
        loader.dispose()
    field = lone_surrogate(value) if "\\u" in text or "\\U" in text else None  # a "\ud800" escape
    if field:
        raise DataError(f"{where}: `{field}` holds a lone UTF-16 surrogate, text no UTF-8 file can hold")
    return value
