"""The run folder's names, in one place: every module that reads or writes a run folder takes them from
here (docs/architecture.md, "The run folder"; their formats are TypedDicts in contracts.py and JSON
Schemas in docs/schemas/). Pure constants: any layer may import it.

    intuser-runs/<org>-<timestamp>/
      snapshot/manifest.json, snapshot/...   what the users had (runs/snapshot.py)
      plan.json, plan.md, metadata/          the plan, with checksums.json (runs/__init__.py)
      journal.jsonl, .lock                   apply's and rollback's steps (runs/journal.py), the lock
      report.html                            the migration report (written by the command that asks for it)

The snapshot, the plan and the journal are written and read by the ``sf_intuser.runs`` package alone.
"""

BASE = "intuser-runs"
SNAPSHOT = "snapshot"
SNAPSHOT_MANIFEST = "manifest.json"          # inside SNAPSHOT
PLAN = "plan.json"
PLAN_MD = "plan.md"
METADATA = "metadata"
#: SHA-256 of plan.json, plan.md and every file under metadata/, written with the plan: apply,
#: verify, rollback and report refuse a run folder whose plan was changed by hand
CHECKSUMS = "checksums.json"
JOURNAL = "journal.jsonl"
LOCK = ".lock"
REPORT_HTML = "report.html"
