"""One PEP 562 ``__getattr__`` for the packages that import their names when first used.

Why lazily: an entry point reaches its Ctrl-C/SIGTERM handlers (``core.stop``) before numpy and the
readers load (attack run 11, A11-7), and ``python -m octviewer.study.vf`` runs a module its package
would otherwise have imported already (runpy warned). Standard library only.
"""

from __future__ import annotations

from importlib import import_module


def lazy_getattr(package: str, names: dict[str, str], namespace: dict):
    """A module ``__getattr__`` that imports ``name`` from ``package``'s submodule ``names[name]`` on first
    use and keeps it in ``namespace`` (the package's globals), so the next lookup is a plain one."""
    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{names[name]}", package), name)
        namespace[name] = value
        return value
    return __getattr__
