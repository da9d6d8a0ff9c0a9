"""How a network's nodes nest in their groups, as the stack's cards and the summary's rows show
them: one walk, so the two views always fold the same way.

Nodes come in topological order, each with its group path ("layer1/0", "" for none). A group's
entry holds the nodes and groups inside it; a group that other nodes interrupt shows again where
it resumes, as its next *piece* (key "g:<path>#2"). Entries that would say nothing new go: a
group holding just one node (a module applied twice, such as ResNet's shared ReLU, resumes as
one-node pieces) shows as that node, and a group holding just one group ("inc" around
"inc/double_conv") shows as one entry for both, labelled "inc/double_conv".

Qt-free: the views turn each entry into a card or a row.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar


class _Nested(Protocol):
    children: Any  # a list of the same kind of entry


Nested = TypeVar("Nested", bound=_Nested)


@dataclass
class TreeEntry:
    """A node (`index` set) or a piece of a group (`index` None, `group` its "/" path, `piece`
    counting from 1 and `label` what its heading says) with the entries inside it; `depth` is
    the number of group entries around it as shown."""
    index: int | None
    group: str = ""
    piece: int = 0
    label: str = ""
    depth: int = 0
    children: list[TreeEntry] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A group piece's key, "g:<path>#<piece>", stable while the groups and their order
        stay (the views keep folds and find rows by it)."""
        return f"g:{self.group}#{self.piece}"


def group_tree(groups: Sequence[str]) -> list[TreeEntry]:
    """The top-level entries for nodes whose group paths are `groups`, in node order (see the
    module docstring for pieces and the entries that are left out)."""
    root: list[TreeEntry] = []
    open_groups: list[tuple[str, list[TreeEntry]]] = []  # the groups around the next node
    pieces: Counter[str] = Counter()
    for index, group in enumerate(groups):
        parts = group.split("/") if group else []
        paths = ["/".join(parts[:d + 1]) for d in range(len(parts))]
        common = 0
        while (common < min(len(open_groups), len(paths))
               and open_groups[common][0] == paths[common]):
            common += 1
        del open_groups[common:]
        for path in paths[common:]:
            pieces[path] += 1
            entry = TreeEntry(None, path, pieces[path], path.rsplit("/", 1)[-1])
            (open_groups[-1][1] if open_groups else root).append(entry)
            open_groups.append((path, entry.children))
        (open_groups[-1][1] if open_groups else root).append(TreeEntry(index))
    entries = _without_single_children(root)
    for entry, depth in walk(entries):
        entry.depth = depth
    return entries


def _without_single_children(entries: list[TreeEntry]) -> list[TreeEntry]:
    out = []
    for entry in entries:
        entry.children = _without_single_children(entry.children)
        if entry.index is None and len(entry.children) == 1:
            only = entry.children[0]
            if only.index is None:
                only.label = f"{entry.label}/{only.label}"
            entry = only
        out.append(entry)
    return out


def walk(entries: Sequence[Nested], depth: int = 0) -> Iterator[tuple[Nested, int]]:
    """Every entry of a tree (TreeEntry, or what a view made of one: anything whose children
    are a list of its kind) in display order, folded ones included, with the number of entries
    around it."""
    for entry in entries:
        yield entry, depth
        yield from walk(entry.children, depth + 1)
