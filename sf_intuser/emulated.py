"""The bundled emulated org for a person at a terminal: ``emulator serve`` (start it, log sf in, log out)
and ``demo`` (the whole job on it). The one module beside the command layer that imports
:mod:`sf_intuser.emulator`; the product's own layers never do (docs/architecture.md). Prints nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from sf_intuser import run_files
from sf_intuser.errors import Failure
from sf_intuser.report.output import EXIT_USAGE

Progress = Callable[[str], None]


def start(seed_file: Path | None, alias: str, scale: int, options: Sequence[str], fault_specs: Sequence[str],
          port: int, minutes: float) -> Any:
    """The emulated org, listening on 127.0.0.1 with its options and faults; a :class:`Failure` naming the
    bad seed, option, fault or port."""
    from sf_intuser.emulator import faults, seed
    from sf_intuser.emulator.server import EmulatedOrg

    try:
        state = seed.load(seed_file, instance=alias, scale=scale)
    except (seed.SeedError, KeyError, TypeError) as exc:
        raise Failure("InvalidSeed", f"The seed {seed_file} cannot be used: {exc}",
                      actions=["Start from the bundled seed: sf_intuser/emulator/seeds/acme.json"]) from None
    for opt in options:
        name, _, value = opt.partition("=")
        try:
            state.options.set(name, value)
        except ValueError as exc:
            raise Failure("InvalidOption", f"--option {opt}: {exc}", EXIT_USAGE,
                          actions=["See `sf-intuser emulator serve --help` and the README's option table"]) from None
    try:
        parsed = [faults.parse(f) for f in fault_specs]
        org = EmulatedOrg(state, port=port, max_seconds=minutes * 60)
    except ValueError as exc:
        raise Failure("InvalidFault", str(exc), EXIT_USAGE,
                      actions=["Write it as PATTERN@N=STATUS:CODE[:MESSAGE], PATTERN@N=drop or "
                               "PATTERN@N=delay:SECONDS"]) from None
    except OSError as exc:
        raise Failure("PortUnavailable", f"Cannot listen on 127.0.0.1:{port}: {exc}", actions=[
            "Choose another --port, or leave it out for a free one"]) from None
    for f in parsed:
        org.inject(f)
    return org.start()


def log_in(org: Any, alias: str, sf_path: str | None) -> tuple[str, str]:
    """Log sf in to ``org`` under ``alias``: a Dev Hub through the web server flow (a refresh token, as
    developers hold one; the emulated org's browser follows the redirects), else with an access token.
    Returns how (``refresh token`` or ``access token``) and the sf executable used."""
    from sf_intuser.sf.runner import SfError, SfRunner

    if org.state.options.dev_hub and sys.platform.startswith("linux"):
        web = SfRunner(sf=sf_path, env={**os.environ, "BROWSER": f"{sys.executable} -m sf_intuser.emulator.browser"},
                       timeout=90)
        try:
            web.run(["org", "login", "web", "--instance-url", org.url, "--alias", alias])
            return "refresh token", web.executable
        except SfError:
            pass          # port 1717 taken, no xdg-open, ...: an access token instead
    runner = SfRunner(sf=sf_path, env={**os.environ, "SF_ACCESS_TOKEN": org.access_token()}, timeout=120)
    runner.run(["org", "login", "access-token", "--instance-url", org.url, "--no-prompt", "--alias", alias])
    return "access token", runner.executable


def log_out(alias: str, sf_path: str | None) -> None:
    """``sf org logout`` of the alias (raises :class:`SfError`), so that an org that no longer answers leaves
    nothing behind in the user's own sf home."""
    from sf_intuser.sf.runner import SfRunner

    SfRunner(sf=sf_path, env=dict(os.environ), timeout=60).run(["org", "logout", "-o", alias, "--no-prompt"])


@dataclass
class Demo:
    discover: dict[str, Any]
    plan: Any            # workflow.PlanOutcome
    apply: Any           # migrate.apply's outcome
    report: dict[str, Any]         # report.migration.build's report
    run_dir: Path
    page: Path
    blocked: list[dict[str, Any]] = field(default_factory=list)


def demo(output_dir: Path | None, sf_path: str | None, progress: Progress, now: Any,
         show: Callable[[str, Any], None] = lambda _phase, _result: None) -> Demo:
    """Discover, plan every candidate, apply (which verifies) and write report.html, on the bundled Acme
    org started for the purpose under a private sf home (the user's own logins are not touched). The
    org stops and the home goes when it ends, whatever happens. ``show`` gets each phase's result as
    it ends (``discover``, ``plan``, ``apply``)."""
    import shutil
    import tempfile

    from sf_intuser import workflow
    from sf_intuser.config import Config
    from sf_intuser.emulator import seed
    from sf_intuser.emulator.server import EmulatedOrg
    from sf_intuser.migrate import apply as apply_mod
    from sf_intuser.report import migration
    from sf_intuser.sf.runner import SfError, SfRunner
    from sf_intuser.workspace import write_synced

    alias = "intuser-demo"
    home = Path(tempfile.mkdtemp(prefix="sf-intuser-demo-home-"))
    org = EmulatedOrg(seed.load(instance=alias), max_seconds=1800).start()
    env = {**os.environ, "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true"}
    env.pop("SF_TARGET_ORG", None)
    try:
        progress(f"Emulated org {org.state.records['Organization'][org.state.org_id]['Name']} at {org.url}; "
                 f"logging the sf CLI in under {alias} (private sf home)")
        try:
            runner = SfRunner(sf=sf_path, env={**env, "SF_ACCESS_TOKEN": org.access_token()})
        except SfError as exc:
            raise workflow.from_error(exc) from None
        try:
            runner.run(["org", "login", "access-token", "--instance-url", org.url, "--no-prompt", "--alias", alias])
        except SfError as exc:
            raise Failure(exc.name, f"The emulated org started but sf could not log in: {exc.message}",
                          actions=exc.actions or ["Run `sf-intuser doctor`"]) from None
        cfg = Config()
        found, _ = workflow.discover(runner, alias, cfg, None, progress)
        show("discover", found)
        out = workflow.plan(lambda: runner, alias, (), True, cfg, None, progress=progress, now=now, base=output_dir)
        show("plan", out.result)
        folder = Path(out.result["runDir"])
        done = apply_mod.apply(runner, folder, alias, progress=progress)
        show("apply", done)
    finally:
        org.stop()
        shutil.rmtree(home, ignore_errors=True)
    run = apply_mod.open_run(folder)
    rep = migration.build(run.plan, run.journal.records)
    page = folder / run_files.REPORT_HTML
    write_synced(page, migration.html_page(rep).encode("utf-8"))
    blocked = [{"username": u["username"], "reason": u["blockers"][0]["problem"], "fix": u["blockers"][0]["fix"]}
               for u in out.plan["users"] if u["status"] == "blocked"]
    blocked += [{"username": f["username"], "reason": f["message"], "fix": f.get("fix", "")}
                for f in done.result["failures"]]
    return Demo(found, out, done, rep, folder, page, blocked)
