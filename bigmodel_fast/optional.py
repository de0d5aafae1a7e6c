"""Optional dependencies: checked where a feature is asked for, before any work, with the install hint.

``matplotlib`` (figures: ``bmf plot``, ``--plots``) and ``tensorboard`` (``--tensorboard``) come with the
``plots`` extra (``pip install -e '.[plots]'``); the engine itself never needs them. A flag that needs one calls
:func:`require` when its config is checked, so a missing package is a one-line error at the start of the command,
not after an hour of training.
"""

from __future__ import annotations

import importlib

__all__ = ["MissingDependencyError", "require"]


class MissingDependencyError(ValueError):
    """An optional package a requested feature needs is not importable (a ValueError: ``bmf`` prints it as one
    line and exits with code 2, like any other bad setting)."""


def require(module: str, extra: str, flag: str) -> None:
    """Import ``module`` or raise :class:`MissingDependencyError`
    ``"<flag> needs <module>: pip install -e '.[<extra>]'"`` (e.g. ``"--plots needs matplotlib: pip install -e
    '.[plots]'"``). ``flag`` names what asked for it (``"--tensorboard"``, ``"bmf plot"``)."""
    try:
        importlib.import_module(module)
    except ImportError as e:  # also a module set to None in sys.modules (how the tests hide one)
        raise MissingDependencyError(f"{flag} needs {module}: pip install -e '.[{extra}]' "
                                     f"(or pip install {module})") from e
