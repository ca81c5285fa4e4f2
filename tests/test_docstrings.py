"""Every public function of fnn has a runnable ``>>>`` example (the doctests run with the suite)."""

import importlib
import inspect
import pkgutil

import fnn


def _public_functions():
    names = ["fnn", *(m.name for m in pkgutil.walk_packages(fnn.__path__, "fnn."))]
    for name in names:
        if any(part.startswith("_") for part in name.split(".")):
            continue
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr, None)
            if inspect.isfunction(obj) and obj.__module__ == name:  # defined here, not re-exported
                yield f"{name}.{attr}", obj


def test_every_public_function_has_an_example():
    found = dict(_public_functions())
    assert len(found) > 100  # the walk reached the package
    missing = sorted(name for name, f in found.items() if ">>>" not in (f.__doc__ or ""))
    assert not missing, f"add a >>> example to the docstrings of: {missing}"
