"""The one choke point that runs the ``sf`` CLI."""

from __future__ import annotations

#: Environment that keeps ``sf`` offline and fast (shared/spec/sf-wire.md sections 0 and 10):
#: telemetry off, no new-version check, both auto-update switches (``SF_AUTOUPDATE_DISABLE`` alone
#: *starts* a background updater on npm installs), and no log file (its flush adds 0.2-1.1 s a call).
QUIET_ENV: dict[str, str] = {
    "SF_DISABLE_TELEMETRY": "true",
    "SF_SKIP_NEW_VERSION_CHECK": "true",
    "SF_DISABLE_AUTOUPDATE": "true",
    "SF_AUTOUPDATE_DISABLE": "true",
    "SF_DISABLE_LOG_FILE": "true",
}
