"""Training errors that need no torch import (the CLI maps them to exit codes)."""


class NonFiniteError(RuntimeError):
    """Training met a non-finite loss, gradient norm or weight; nothing non-finite was saved (``bmf`` exit 1)."""
