"""The journal of a run folder: ``journal.jsonl``, append-only, one JSON record a line, each written
with one ``write`` and made durable (flush and fsync) before the step it announces starts.

Records: ``{"seq", "at", "run": "apply"|"rollback", "step", "phase", ...}``. ``phase`` is ``start`` and
``end`` for a whole run, ``intent`` before a step (with the records it will touch) and ``outcome``
after it (with what happened to each), ``amend`` when a permission the org refuses is dropped from a
generated permission set, ``stopped`` when a run stops early. A step with an intent and no outcome
was cut off: whoever reads the journal next checks the org before doing it again.

A step starts only once its intent is whole on disk: a write the disk cuts short (full disk) is taken
back and the step does not run. So a last line without its end of line is a record that was never
written whole (a crash or a full disk while writing it): it is set aside when the journal is read and
cut off before the next record is written, and its step counts as not started. Any other line that
does not parse (edited by hand) is refused, naming the line: nothing is done on the word of a journal
that can't be read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sf_intuser.errors import Failure
from sf_intuser.run_files import JOURNAL

FILE = JOURNAL


@dataclass
class Journal:
    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    #: bytes of a last record that was never written whole (set aside; cut off before the next write)
    torn: bytes = b""

    @classmethod
    def load(cls, folder: Path) -> "Journal":
        path = folder / FILE
        records: list[dict[str, Any]] = []
        torn = b""
        if path.exists():
            data = path.read_bytes()
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            elif lines:
                torn = lines.pop()   # no end of line: never written whole, so its step never started
            for n, line in enumerate(lines, 1):
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict) or "phase" not in rec or "run" not in rec:
                        raise ValueError("not a journal record")
                except ValueError as exc:
                    raise Failure("JournalBroken", f"{path} line {n} is not a journal record ({exc}): "
                                  "nothing was done", actions=["Restore the journal, or remove the broken line if "
                                                            "it is the last one"]) from None
                records.append(rec)
        return cls(path, records, torn)

    def append(self, run: str, phase: str, step: str = "", **fields: Any) -> dict[str, Any]:
        rec = {"seq": len(self.records) + 1, "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
               "run": run, "step": step, "phase": phase, **fields}
        line = (json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if self.torn and size >= len(self.torn):
                size -= len(self.torn)        # a record never written whole: cut it off first
                os.ftruncate(fd, size)
                self.torn = b""
            try:
                written = os.pwrite(fd, line, size)
                if written != len(line):
                    raise OSError(28, f"only {written} of {len(line)} bytes written")
                os.fsync(fd)
            except OSError as exc:
                try:   # take the partial record back, so the journal stays whole
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                except OSError:
                    pass
                raise Failure("JournalWriteFailed", f"{self.path} could not be written ({exc.strerror or exc}): "
                              f"the step {step or phase!r} was not started",
                              actions=["Free disk space (or make the run folder writable), then continue: "
                                       "apply --resume or rollback picks up from here"]) from None
        finally:
            os.close(fd)
        self.records.append(rec)
        return rec

    # --- reading ---------------------------------------------------------------------------------

    def of(self, run: str, phase: str | None = None, step: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if r["run"] == run and (phase is None or r["phase"] == phase)
                and (step is None or r["step"] == step)]

    def finished(self, run: str) -> dict[str, Any] | None:
        """The last ``end`` record of ``run`` after its last ``start``, if any."""
        last = None
        for r in self.records:
            if r["run"] == run and r["phase"] == "start":
                last = None
            elif r["run"] == run and r["phase"] == "end":
                last = r
        return last

    def touched_users(self) -> set[str]:
        """Users an apply announced a change for (an intent naming them): all a rollback may touch."""
        out: set[str] = set()
        for r in self.of("apply", "intent"):
            out |= {str(x.get("userId")) for x in r.get("records", []) if x.get("userId")}
        return out

    def moving_users(self) -> set[str]:
        """Users an apply switched (an outcome says so) or may have switched (a switch cut off, or a
        later step naming them): the users whose state need not be the snapshot's."""
        out: set[str] = set()
        open_: list[dict[str, Any]] = []
        for r in self.of("apply"):
            if r["step"] == "switch-profiles" and r["phase"] == "intent":
                open_ = list(r.get("records", []))
            elif r["step"] == "switch-profiles" and r["phase"] == "outcome":
                out |= {str(x["userId"]) for x in r.get("results", []) if x.get("ok")}
                open_ = []
            elif r["phase"] == "intent" and r["step"] != "switch-profiles":
                out |= {str(x.get("userId")) for x in r.get("records", []) if x.get("userId")}
        return out | {str(x["userId"]) for x in open_}

    def cut_off(self, run: str) -> list[dict[str, Any]]:
        """Intents of ``run`` with no outcome after them: steps a crash cut off."""
        open_: dict[str, dict[str, Any]] = {}
        for r in self.of(run):
            if r["phase"] == "intent":
                open_[r["step"]] = r
            elif r["phase"] in ("outcome", "stopped") and r["step"] in open_:
                del open_[r["step"]]
        return list(open_.values())

    def amendments(self) -> dict[str, set[str]]:
        """Permission set name -> user permissions dropped from it during apply."""
        out: dict[str, set[str]] = {}
        for r in self.of("apply", "amend"):
            out.setdefault(r["permissionSet"], set()).add(r["permission"])
        return out

    def created_access(self) -> list[str]:
        """Ids of SetupEntityAccess rows the apply created (a rollback revokes only these)."""
        ids: list[str] = []
        for r in self.of("apply", "outcome", "grant"):
            ids += [x["id"] for x in r.get("results", []) if x.get("kind") == "access" and x.get("ok") and x.get("id")]
        return ids

    def created_components(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for r in self.of("apply", "outcome", "deploy"):
            out += [c for c in r.get("created", [])]
        return out
