"""The one failure type the command line reports: a stable name, the message, the exit code, what to do."""

from __future__ import annotations

from typing import Any, Sequence


class Failure(Exception):
    """What went wrong, for a person: ``name`` (stable, for scripts), ``message`` naming the thing,
    ``exit_code`` (sf's: 1 failure, 2 usage, 68 partial), ``actions`` (the fixes) and ``data``."""

    def __init__(self, name: str, message: str, exit_code: int = 1, actions: Sequence[str] = (),
                 data: Any = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.exit_code = exit_code
        self.actions = list(actions)
        self.data = data
