"""Fault injection: fail the n-th request matching a pattern, drop the connection, or delay it.

A request is matched as the text ``METHOD PATH[?QUERY]``, and for Metadata API calls
``... OPERATION`` (e.g. ``POST /services/Soap/m/62.0 deploy``), with a regular expression
(``re.search``). From the command line a fault is written ``PATTERN@N=ACTION``:

- ``PATCH /sobjects/User/@1=400:LICENSE_LIMIT_EXCEEDED:License Limit Exceeded`` answers the first
  user update with that REST error (a SOAP call gets a SOAP fault with that code);
- ``/composite/sobjects@2=drop`` closes the connection on the second collection call, unanswered;
- ``checkDeployStatus@1=delay:3`` holds the first deploy poll for three seconds.

``N`` counts matching requests from 1; ``N+`` (``@2+``) fails that one and every later one. In
process, a test may also give a ``call`` fault: a function run on the org's state right before the
matching request is answered, to make a change behind the tool's back at an exact moment.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

#: A gack: the CLI gives it exit code 20 (docs/sf-wire.md section 9)
GACK = "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)"


@dataclass
class Fault:
    pattern: str
    nth: int = 1
    repeat: bool = False
    action: str = "error"          # error | drop | delay | call
    status: int = 500
    code: str = "UNKNOWN_EXCEPTION"
    message: str = GACK
    seconds: float = 0.0
    seen: int = 0
    fired: int = 0
    #: ``call`` (tests, in process): run on the org's state just before the request is answered as usual:
    #: a change someone else makes in the org at that moment (an admin assigning a permission set)
    before: Callable[[Any], None] | None = None
    #: set once the org has finished a request this fault applied to (a delayed one included, answered or
    #: not): a test that killed the client waits on it rather than for a fixed time
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def hit(self, request: str) -> bool:
        """Count ``request`` if it matches; True when this fault applies to it."""
        if not re.search(self.pattern, request):
            return False
        self.seen += 1
        if self.seen == self.nth or (self.repeat and self.seen > self.nth):
            self.fired += 1
            return True
        return False


def parse(spec: str) -> Fault:
    """``PATTERN@N=STATUS:CODE[:MESSAGE]`` | ``PATTERN@N=drop`` | ``PATTERN@N=delay:SECONDS``."""
    pattern, at, rest = spec.rpartition("@")
    if not at or "=" not in rest:
        raise ValueError(f"fault {spec!r}: write PATTERN@N=STATUS:CODE[:MESSAGE], PATTERN@N=drop or "
                         "PATTERN@N=delay:SECONDS")
    count, _, action = rest.partition("=")
    repeat = count.endswith("+")
    try:
        nth = int(count.rstrip("+"))
        re.compile(pattern)
    except (ValueError, re.error) as exc:
        raise ValueError(f"fault {spec!r}: {exc}") from None
    if action == "drop":
        return Fault(pattern, nth, repeat, "drop")
    if action.startswith("delay:"):
        return Fault(pattern, nth, repeat, "delay", seconds=float(action[6:]))
    status, _, tail = action.partition(":")
    code, _, message = tail.partition(":")
    if not status.isdigit() or not code:
        raise ValueError(f"fault {spec!r}: the action must be STATUS:CODE[:MESSAGE], drop or delay:SECONDS")
    return Fault(pattern, nth, repeat, "error", int(status), code, message or code.replace("_", " ").title())
