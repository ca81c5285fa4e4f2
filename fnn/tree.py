"""Pytrees: nested containers of arrays, and the functions that walk them.

A pytree is a nested structure of tuples, lists, dicts, ``NamedTuple`` records
and ``None``, whose leaves are numpy arrays or Python scalars. These are the
conventions of ``jax.tree_util``: ``None`` is a node with no children, dict
children are ordered by sorted key, a ``NamedTuple`` is a node whose children
are its fields. A ``collections.OrderedDict`` and a ``collections.defaultdict``
are dicts too, rebuilt as their own type: an ``OrderedDict``'s children in its
insertion order, a ``defaultdict``'s by sorted key and with its
``default_factory`` (part of its structure). Other subclasses of tuple, list or
dict are leaves, as in jax. A network (a tuple of layer records), its gradients
and an optimizer's state are all pytrees, so one set of functions serves them all.

Every function here is pure: it builds new containers and never writes into
the ones it is given. Functions that take several trees require them to have
the same structure, and say so, printing both, when they do not.

>>> from typing import NamedTuple
>>> import numpy as np
>>> class Pair(NamedTuple):
...     a: np.ndarray
...     b: float
>>> t = (Pair(np.zeros(2), 1.0), None, {"k": 3})
>>> leaves(t)
[array([0., 0.]), 1.0, 3]
>>> map(lambda v: v * 2, t)
(Pair(a=array([0., 0.]), b=2.0), None, {'k': 6})
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = [
    "PyTree",
    "TreeDef",
    "TreeMismatchError",
    "flatten",
    "unflatten",
    "leaves",
    "paths",
    "structure",
    "map",
    "all_equal",
    "add",
    "sub",
    "scale",
    "vdot",
    "norm",
    "zeros_like",
    "size",
    "freeze",
]

PyTree = Any


class TreeMismatchError(ValueError):
    """Two pytrees that had to share a structure do not."""


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


_DICTS = (dict, OrderedDict, defaultdict)
_PLAIN = (tuple, list, type(None), *_DICTS)


def _is_node(x: Any) -> bool:
    """Whether ``x`` is a container of the tree (a tuple, list, dict, ``OrderedDict``, ``defaultdict``,
    ``None`` or ``NamedTuple``), not a leaf."""
    return type(x) in _PLAIN or _is_namedtuple(x)


def _dict_meta(node: dict[Any, Any]) -> Any:
    """What a dict node's structure holds besides its type: its keys in children order (sorted; an
    ``OrderedDict``'s as inserted), with a ``defaultdict``'s ``default_factory`` before them.

    >>> _dict_meta({"b": 1, "a": 2}), _dict_meta(OrderedDict(b=1, a=2)), _dict_meta(defaultdict(list, b=1))
    (('a', 'b'), ('b', 'a'), (<class 'list'>, ('b',)))
    """
    if type(node) is OrderedDict:
        return tuple(node)
    keys = tuple(sorted(node))
    return (node.default_factory, keys) if type(node) is defaultdict else keys


def _keys(kind: Any, meta: Any) -> tuple[Any, ...]:
    """The keys of a dict node of ``kind`` in children order, from its :func:`_dict_meta`."""
    return meta[1] if kind is defaultdict else meta


def _children(node: Any) -> tuple[Any, Any, list[Any]] | None:
    """``(kind, meta, children)`` for a container node, ``None`` for a leaf."""
    if not _is_node(node):
        return None
    if isinstance(node, dict):
        kind, meta = type(node), _dict_meta(node)
        return kind, meta, [node[k] for k in _keys(kind, meta)]
    return type(node), None, [] if node is None else list(node)


def _node(kind: Any, meta: Any, kids: list[Any]) -> Any:
    """A container of ``kind`` (and dict :func:`_dict_meta` ``meta``) holding ``kids``: the inverse of
    :func:`_children`."""
    if kind is tuple:
        return tuple(kids)
    if kind is list:
        return kids
    if kind is dict or kind is OrderedDict:
        return kind(zip(meta, kids))
    if kind is defaultdict:
        return defaultdict(meta[0], zip(meta[1], kids))
    if kind is type(None):
        return None
    return kind(*kids)


class TreeDef:
    """The structure of a pytree with its leaves taken out.

    Two trees have equal ``TreeDef``s when they have the same containers, the
    same record types and dict keys, and the same number of leaves in the same
    places. ``str(treedef)`` draws the structure with ``*`` for each leaf.
    """

    __slots__ = ("kind", "meta", "children", "num_leaves")
    num_leaves: int

    def __init__(self, kind: Any, meta: Any, children: tuple[TreeDef, ...]) -> None:
        self.kind = kind
        self.meta = meta
        self.children = children
        self.num_leaves = 1 if kind is None else sum(c.num_leaves for c in children)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TreeDef)
            and self.kind is other.kind
            and self.meta == other.meta
            and self.children == other.children
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.meta, self.children))

    def __repr__(self) -> str:
        return f"TreeDef({self})"

    def __str__(self) -> str:
        kind, kids = self.kind, [str(c) for c in self.children]
        if kind is None:
            return "*"
        if kind is type(None):
            return "None"
        if kind is tuple:
            return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
        if kind is list:
            return "[" + ", ".join(kids) + "]"
        if kind in _DICTS:
            items = "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(_keys(kind, self.meta), kids)) + "}"
            if kind is dict:
                return items
            factory = f"{getattr(self.meta[0], '__name__', self.meta[0])}, " if kind is defaultdict else ""
            return f"{kind.__name__}({factory}{items})"
        fields = ", ".join(f"{f}={c}" for f, c in zip(kind._fields, kids))
        return f"{kind.__name__}({fields})"

    def build(self, it: Any) -> Any:
        """Rebuild a tree of this structure, taking leaves from iterator ``it``."""
        if self.kind is None:
            return next(it)
        return _node(self.kind, self.meta, [c.build(it) for c in self.children])


_LEAF = TreeDef(None, None, ())


def _flatten(node: Any, out: list[Any]) -> TreeDef:
    found = _children(node)
    if found is None:
        out.append(node)
        return _LEAF
    kind, meta, kids = found
    return TreeDef(kind, meta, tuple(_flatten(k, out) for k in kids))


def flatten(tree: PyTree) -> tuple[list[Any], TreeDef]:
    """Split a tree into its list of leaves and its structure.

    ``unflatten(*reversed(flatten(t)))`` rebuilds ``t``.

    >>> leaves_, treedef = flatten({"b": (1, 2), "a": None})
    >>> leaves_, str(treedef)
    ([1, 2], "{'a': None, 'b': (*, *)}")
    """
    out: list[Any] = []
    return out, _flatten(tree, out)


def unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> PyTree:
    """Build a tree of structure ``treedef`` from ``leaves`` in flatten order.

    >>> _, treedef = flatten((0, [0, 0]))
    >>> unflatten(treedef, [1, 2, 3])
    (1, [2, 3])
    """
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise TreeMismatchError(
            f"unflatten: the structure {treedef} has {treedef.num_leaves} leaves but "
            f"{len(leaves)} were given; pass exactly one leaf per '*'."
        )
    return treedef.build(iter(leaves))


def leaves(tree: PyTree) -> list[Any]:
    """The leaves of ``tree`` in flatten order.

    >>> leaves([1, (2, None), {"x": 3}])
    [1, 2, 3]
    """
    return flatten(tree)[0]


def paths(tree: PyTree) -> list[tuple[str, Any]]:
    """``(path, leaf)`` for every leaf of ``tree``, in flatten order: ``.field`` into a record,
    ``[i]`` into a tuple or list, ``[key]`` into a dict (for error messages naming a leaf).

    >>> from typing import NamedTuple
    >>> class Dense(NamedTuple):
    ...     w: int
    ...     b: int
    >>> paths((Dense(1, 2), {"b": [3], "a": 4}))
    [('[0].w', 1), ('[0].b', 2), ("[1]['a']", 4), ("[1]['b'][0]", 3)]
    """
    out: list[tuple[str, Any]] = []

    def walk(node: Any, at: str) -> None:
        found = _children(node)
        if found is None:
            out.append((at, node))
            return
        kind, meta, kids = found
        if isinstance(node, dict):
            steps = [f"[{k!r}]" for k in _keys(kind, meta)]
        elif _is_namedtuple(node):
            steps = [f".{f}" for f in kind._fields]
        else:
            steps = [f"[{i}]" for i in range(len(kids))]
        for step, kid in zip(steps, kids):
            walk(kid, at + step)

    walk(tree, "")
    return out


def structure(tree: PyTree) -> TreeDef:
    """The ``TreeDef`` of ``tree``.

    >>> str(structure((1, [2, 3])))
    '(*, [*, *])'
    """
    return flatten(tree)[1]


def _mismatch(name: str, a: TreeDef, b: TreeDef, index: int) -> TreeMismatchError:
    return TreeMismatchError(
        f"{name}: argument {index} does not have the structure of the first tree.\n"
        f"  first tree:    {a}\n"
        f"  argument {index}:    {b}\n"
        "Pass trees built the same way (same containers, record types, dict keys and "
        "leaf positions), e.g. grads from fnn.grad(params, ...) for params."
    )


def map(f: Callable[..., Any], tree: PyTree, *rest: PyTree, outputs: int | None = None) -> PyTree:
    """Apply ``f`` leaf by leaf, returning a tree of the structure of ``tree``.

    ``map(f, t, u)`` calls ``f(leaf_t, leaf_u)`` for each pair of matching
    leaves; ``t`` and ``u`` must have the same structure. With ``outputs=k``, ``f``
    returns a ``k``-tuple and ``map`` returns ``k`` trees, the first of every ``f``'s
    first output, and so on (an optimizer's new updates and new states). One walk over
    the trees, whatever ``k``: no structure is built unless they differ, and a difference
    raises :class:`TreeMismatchError` when the walk reaches it (``f`` may have run on the
    leaves before it).

    >>> map(lambda a, b: a + b, (1, [2]), (10, [20]))
    (11, [22])
    >>> map(lambda a, b: (a + b, a * b), (1, [2]), (10, [20]), outputs=2)
    ((11, [22]), (10, [40]))
    """
    try:
        return _map(f, outputs, tree, *rest)
    except _Differ as e:
        raise _mismatch("fnn.tree.map", structure(tree), structure(rest[e.index]), e.index + 1) from None


class _Differ(Exception):
    """Raised inside :func:`_map` where tree ``index`` of ``rest`` stops matching."""

    def __init__(self, index: int) -> None:
        self.index = index


def _map(f: Callable[..., Any], outputs: int | None, node: Any, *rest: Any) -> Any:
    """:func:`map` below ``node``, matching ``rest`` node by node as it goes."""
    kind = type(node)
    if kind is np.ndarray or not _is_node(node):  # a leaf (arrays, the common one, decided first)
        for i, other in enumerate(rest):
            if type(other) is not np.ndarray and _is_node(other):
                raise _Differ(i)
        return f(node, *rest)
    for i, other in enumerate(rest):
        if type(other) is not kind or (node is not None and len(other) != len(node)):
            raise _Differ(i)
    meta = None
    if kind in _DICTS:
        meta = _dict_meta(node)
        for i, other in enumerate(rest):
            if _dict_meta(other) != meta:
                raise _Differ(i)
        outs = [_map(f, outputs, node[k], *[other[k] for other in rest]) for k in _keys(kind, meta)]
    else:
        outs = [] if node is None else [_map(f, outputs, *kids) for kids in zip(node, *rest)]
    if outputs is None:
        return _node(kind, meta, outs)
    return tuple([_node(kind, meta, list(column)) for column in (zip(*outs) if outs else [()] * outputs)])


def all_equal(a: PyTree, b: PyTree) -> bool:
    """Whether two trees have the same structure and bit-identical leaves.

    >>> import numpy as np
    >>> all_equal((np.ones(2), None), (np.ones(2), None))
    True
    >>> all_equal((np.ones(2),), (np.zeros(2),))
    False
    >>> all_equal(("a", np.nan), ("a", np.nan))
    True
    """
    la, da = flatten(a)
    lb, db = flatten(b)
    def same(x: Any, y: Any) -> bool:
        x, y = np.asarray(x), np.asarray(y)
        return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")  # NaN only in floats

    return da == db and all(same(x, y) for x, y in zip(la, lb))


def add(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a + b``.

    >>> add((1.0, [2.0]), (0.5, [0.5]))
    (1.5, [2.5])
    """
    return map(lambda x, y: x + y, a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b``.

    >>> sub((1.0, [2.0]), (0.5, [0.5]))
    (0.5, [1.5])
    """
    return map(lambda x, y: x - y, a, b)


def scale(c: float, tree: PyTree) -> PyTree:
    """Leafwise ``c * tree``, keeping each array's dtype.

    >>> import numpy as np
    >>> scale(0.5, (np.ones(2, np.float32),))[0].dtype
    dtype('float32')
    """
    return map(lambda x: x * np.asarray(c, dtype=np.result_type(x)) if isinstance(x, np.ndarray) else c * x, tree)


def vdot(a: PyTree, b: PyTree) -> float:
    """Sum over all leaves of ``sum(a_leaf * b_leaf)``: the inner product of two trees.

    >>> import numpy as np
    >>> vdot((np.ones(3), 2.0), (np.ones(3), 3.0))
    9.0
    """
    return float(sum(leaves(map(lambda x, y: np.vdot(x, y), a, b)), 0.0))


def norm(tree: PyTree) -> float:
    """The global L2 norm: ``sqrt(vdot(tree, tree))``.

    >>> import numpy as np
    >>> norm((np.array([3.0]), np.array([[4.0]])))
    5.0
    """
    return float(np.sqrt(vdot(tree, tree)))


def zeros_like(tree: PyTree) -> PyTree:
    """A tree of the same structure with every leaf replaced by zeros of its shape and dtype.

    >>> zeros_like((1.5, [2]))
    (array(0.), [array(0)])
    """
    return map(np.zeros_like, tree)


def size(tree: PyTree) -> int:
    """The total number of scalars in all leaves: every leaf, settings included.

    Generic over any pytree, it counts a LeakyReLU's slope, a convolution's stride and
    BatchNorm's running statistics too; a network's trainable parameters are
    :func:`fnn.num_params`.

    >>> import numpy as np
    >>> size((np.zeros((3, 4)), np.zeros(4), 1.0))
    17
    """
    return int(sum(np.size(x) for x in leaves(tree)))


def freeze(tree: PyTree) -> PyTree:
    """Mark every array leaf of ``tree`` read-only, in place; returns ``tree``.

    Only for arrays that fnn itself has just created and no caller has seen: every array
    fnn returns (params, gradients, updates) goes out through here, so nothing downstream
    can change a network that someone else holds.

    >>> import numpy as np
    >>> t = freeze((np.zeros(2), 1.0))
    >>> t[0].flags.writeable
    False
    """
    for leaf in leaves(tree):
        if isinstance(leaf, np.ndarray):
            leaf.flags.writeable = False
    return tree
