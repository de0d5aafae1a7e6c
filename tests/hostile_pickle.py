"""A pickle that would run code: what every loader of the package must refuse without running it."""

from __future__ import annotations

import os


class Evil:
    """Unpickling this would run a shell command creating ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
