"""fnn.tree: flatten/unflatten round trips, structure-preserving map, arithmetic, mismatch errors."""

from collections import OrderedDict, defaultdict
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn
from fnn import tree


class Rec(NamedTuple):
    a: object
    b: object


leaves_st = st.one_of(
    st.integers(-5, 5),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.builds(lambda n, s: np.arange(n, dtype=np.float64) * s, st.integers(0, 4), st.floats(-2, 2, allow_nan=False)),
)
trees_st = st.recursive(
    st.one_of(leaves_st, st.none()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.lists(kids, max_size=3).map(tuple),
        st.dictionaries(st.text("abc", min_size=1, max_size=2), kids, max_size=3),
        st.dictionaries(st.text("abc", min_size=1, max_size=2), kids, max_size=3).map(OrderedDict),
        st.builds(defaultdict, st.sampled_from([list, int]), st.dictionaries(st.text("ab", min_size=1), kids,
                                                                             max_size=2)),
        st.builds(Rec, kids, kids),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(trees_st)
def test_unflatten_flatten_round_trips(t):
    leaves, treedef = tree.flatten(t)
    assert tree.all_equal(tree.unflatten(treedef, leaves), t)
    assert treedef.num_leaves == len(leaves)


@settings(max_examples=150, deadline=None)
@given(trees_st)
def test_map_preserves_structure(t):
    mapped = tree.map(lambda x: x * 2, t)
    assert tree.structure(mapped) == tree.structure(t)
    for before, after in zip(tree.leaves(t), tree.leaves(mapped)):
        np.testing.assert_array_equal(after, np.asarray(before) * 2)


@settings(max_examples=150, deadline=None)
@given(trees_st, trees_st)
def test_map_walks_like_flatten_and_finds_any_difference(t, u):
    """One walk: leaves in flatten order, ``outputs=k`` gives k trees, and two trees match exactly when
    their flattened structures are equal (else the error shows both)."""
    seen = []
    tree.map(seen.append, t)
    assert len(seen) == len(tree.leaves(t)) and all(a is b for a, b in zip(seen, tree.leaves(t)))
    doubled, same = tree.map(lambda a, b: (a * 2, b), t, t, outputs=2)
    assert tree.all_equal(doubled, tree.map(lambda a: a * 2, t)) and tree.all_equal(same, t)
    if tree.structure(t) == tree.structure(u):
        tree.map(lambda a, b: a, t, u)
    else:
        with pytest.raises(tree.TreeMismatchError) as e:
            tree.map(lambda a, b: a, t, u, outputs=None)
        assert str(tree.structure(t)) in str(e.value) and str(tree.structure(u)) in str(e.value)


def test_conventions_match_jax_tree_util():
    # None has no leaves; dict children in sorted key order; NamedTuple fields are children.
    t = {"b": 1, "a": (2, None, Rec(3, [4]))}
    assert tree.leaves(t) == [2, 3, 4, 1]
    assert str(tree.structure(t)) == "{'a': (*, None, Rec(a=*, b=[*])), 'b': *}"


def test_ordered_dict_and_defaultdict_are_nodes_as_in_jax():
    # An OrderedDict keeps its insertion order, a defaultdict its default_factory; both rebuilt as themselves.
    t = OrderedDict([("b", 1), ("a", defaultdict(list, {"y": 2, "x": 3}))])
    leaves, treedef = tree.flatten(t)
    assert leaves == [1, 3, 2]
    assert str(treedef) == "OrderedDict({'b': *, 'a': defaultdict(list, {'x': *, 'y': *})})"
    doubled = tree.map(lambda v: v * 2, t)
    assert type(doubled) is OrderedDict and list(doubled) == ["b", "a"] and doubled["b"] == 2
    assert type(doubled["a"]) is defaultdict and doubled["a"].default_factory is list
    assert doubled["a"] == {"x": 6, "y": 4} and doubled["a"]["new"] == []
    rebuilt = tree.unflatten(treedef, leaves)
    assert rebuilt == t and type(rebuilt) is OrderedDict and rebuilt["a"].default_factory is list
    # Key order is part of an OrderedDict's structure, the factory part of a defaultdict's, the type of both.
    assert tree.structure(OrderedDict(a=1, b=2)) != tree.structure(OrderedDict(b=2, a=1))
    assert tree.structure(defaultdict(list, a=1)) != tree.structure(defaultdict(int, a=1))
    assert tree.structure(OrderedDict(a=1)) != tree.structure({"a": 1})
    with pytest.raises(tree.TreeMismatchError, match=r"OrderedDict\({'a': \*, 'b': \*}\)"):
        tree.map(lambda x, y: x, OrderedDict(a=1, b=2), OrderedDict(b=2, a=1))
    with pytest.raises(tree.TreeMismatchError, match=r"defaultdict\(int, {'a': \*}\)"):
        tree.map(lambda x, y: x, defaultdict(list, a=1), defaultdict(int, a=1))

    class Custom(dict):
        pass

    assert tree.leaves(Custom(a=1)) == [Custom(a=1)]  # other subclasses are leaves, as in jax


def test_network_structure():
    params = fnn.mlp([3, 2, 1], seed=0)
    assert str(tree.structure(params)) == "(Dense(w=*, b=*), Sigmoid(), Dense(w=*, b=*), Sigmoid())"


def test_mismatch_prints_both_structures():
    with pytest.raises(tree.TreeMismatchError) as e:
        tree.map(lambda a, b: a + b, (1, [2]), (1, [2, 3]))
    msg = str(e.value)
    assert "(*, [*])" in msg and "(*, [*, *])" in msg


def test_unflatten_wrong_leaf_count():
    _, treedef = tree.flatten((1, 2))
    with pytest.raises(tree.TreeMismatchError, match="2 leaves but 3"):
        tree.unflatten(treedef, [1, 2, 3])


def test_arithmetic_values():
    a = (np.array([1.0, 2.0]), {"k": np.array([[3.0]])})
    b = (np.array([0.5, 0.5]), {"k": np.array([[1.0]])})
    np.testing.assert_array_equal(tree.add(a, b)[0], [1.5, 2.5])
    np.testing.assert_array_equal(tree.sub(a, b)[1]["k"], [[2.0]])
    assert tree.vdot(a, b) == 1.0 * 0.5 + 2.0 * 0.5 + 3.0
    assert tree.norm(a) == pytest.approx(np.sqrt(1 + 4 + 9))
    assert tree.size(a) == 3
    z = tree.zeros_like(a)
    assert tree.structure(z) == tree.structure(a) and tree.norm(z) == 0.0


def test_scale_keeps_float32():
    t = (np.ones(3, np.float32),)
    assert tree.scale(0.1, t)[0].dtype == np.float32


def test_functions_do_not_mutate():
    a = (np.array([1.0, 2.0]),)
    before = a[0].copy()
    tree.add(a, a), tree.scale(3.0, a), tree.zeros_like(a)
    np.testing.assert_array_equal(a[0], before)
