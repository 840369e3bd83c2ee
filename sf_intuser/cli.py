"""The ``sf-intuser`` command line. The only module that prints, reads the environment and picks exit codes.

Conventions follow ``sf``: ``--json`` prints ``{status, result, warnings}`` on stdout (also for
errors, as sf's error envelope), ``SF_CONTENT_TYPE=JSON`` means ``--json``; exit codes 0 ok,
1 failure, 2 usage, 68 partial success.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import click

from sf_intuser import __version__
from sf_intuser.errors import Failure
from sf_intuser.report.output import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    envelope,
    error_envelope,
    table,
    warning_lines,
)


CliError = Failure   # what a command fails with; run() prints it as sf does


def json_wanted(flag: bool) -> bool:
    return flag or os.environ.get("SF_CONTENT_TYPE", "").upper() == "JSON"


def echo(text: str, err: bool = False, as_json: bool = False) -> None:
    """Print for a person or a program, with org-controlled text made harmless: control characters
    (terminal escape sequences) shown as ``\\xNN`` in human output; in JSON, the C1 controls json.dumps
    leaves as they are written as ``\\u00NN`` (report/escape.py)."""
    from sf_intuser.report.escape import json_safe, terminal

    click.echo(json_safe(text) if as_json else terminal(text, keep_newlines=True), err=err)


def emit(as_json: bool, result: Any, human: Callable[[], str], status: int = EXIT_OK,
         warnings: Sequence[str] = ()) -> None:
    if json_wanted(as_json):
        echo(envelope(result, status, warnings), as_json=True)
    else:
        text = human()
        if text:
            echo(text)
        for w in warnings:
            echo(f"Warning: {w}", err=True)
    if status:
        sys.exit(status)


json_option = click.option("--json", "as_json", is_flag=True, help="Format output as json (sf's envelope).")

if TYPE_CHECKING:
    from sf_intuser import workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sf-intuser")
def main() -> None:
    """Move Salesforce integration users onto the free Salesforce Integration user license.

    \b
    Read the org:  discover, snapshot, plan
    Change it:     apply, verify, rollback, report
    Offline:       convert, lint
    Rehearse:      rehearse (a sandbox or scratch org), demo (the bundled emulated org)
    Tools:         doctor, emulator serve
    """


# --- convert ----------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-d", "--output-dir", type=click.Path(path_type=Path), default=Path("intuser-out"),
              show_default=True, help="Folder for the generated metadata (never an input file).")
@click.option("--format", "fmt", type=click.Choice(["source", "mdapi"]), default="source", show_default=True,
              help="source: *.permissionset-meta.xml; mdapi: *.permissionset plus package.xml.")
@click.option("--psl", is_flag=True,
              help="Bind generated permission sets to SalesforceAPIIntegrationPsl instead of no license.")
@click.option("--api-version", default=None, metavar="VERSION",
              help="API version of the package.xml written with --format mdapi (default: the project's "
                   "sourceApiVersion, else 66.0).")
@click.option("--dry-run", is_flag=True, help="Report what would be written; write nothing.")
@json_option
def convert(paths: tuple[Path, ...], output_dir: Path, fmt: str, psl: bool, api_version: str | None,
            dry_run: bool, as_json: bool) -> None:
    """Rewrite profiles and permission sets for the Salesforce Integration license.

    PATHS are files, folders or SFDX project roots (package directories from sfdx-project.json).
    Every input is converted on its own: two files holding the same profile or permission set are
    refused, and generated names never collide (a clash gets a stable suffix and a warning).

    \b
    Examples:
      sf-intuser convert force-app --output-dir intuser-out
      sf-intuser convert "force-app/main/default/profiles/ETL Loader.profile-meta.xml" --format mdapi --json
    """
    from sf_intuser import workspace
    from sf_intuser.metadata import naming, package_xml, schema
    from sf_intuser.metadata.xml import MetadataXmlError
    from sf_intuser.migrate.convert import DuplicateInputs, Input, convert as run_convert

    files = _discover(paths)
    if not files:
        raise CliError("NoMetadataFound", f"No profiles or permission sets found in {', '.join(map(str, paths))}.",
                       actions=["Pass a folder holding profiles/ or permissionsets/, or an SFDX project root."])
    inputs = [Input(f.type, f.name, origin=str(f.path), load=f.read) for f in files]
    projects = sorted({p for p in (workspace.find_project(x) for x in [*(f.path for f in files), output_dir]) if p})
    found = workspace.existing_components([output_dir, *projects])

    def existing(type_name: str, name: str) -> naming.Existing | None:
        path = found.get((type_name, name.lower()))
        if path is None:
            return None
        return naming.Existing(_shown(path), naming.source_of(workspace.description_of(path)))

    stage = workspace.Staging(output_dir, protect=[f.path for f in files])
    with stage:
        try:
            res = run_convert(inputs, psl=psl, existing=existing,
                              sink=(lambda _k, _d: None) if dry_run else stage.put)
        except DuplicateInputs as exc:
            raise CliError("DuplicateInput", f"Nothing was written: {exc}. Converting them together would merge "
                           "different profiles into one permission set.",
                           actions=["Convert each copy in its own call, into its own --output-dir",
                                    "Or leave out the copy that is not the org's"],
                           data=[{"type": t, "name": n, "files": fs} for t, n, fs in exc.groups]) from None
        except (workspace.WorkspaceError, MetadataXmlError) as exc:
            raise CliError("InvalidMetadata", f"Nothing was written: {exc}") from None
        if res.errors:
            raise CliError("InvalidMetadata", "Nothing was written: " + "; ".join(str(e) for e in res.errors),
                           actions=[e.fix for e in res.errors][:3],
                           data=[{"file": e.source, "problem": e.problem} for e in res.errors])
        placement = {o.key: workspace.file_name(o.type, o.name, fmt) for o in res.outputs}
        if fmt == "mdapi" and res.outputs:
            members: dict[str, list[str]] = {}
            for o in res.outputs:
                members.setdefault(o.type, []).append(o.name)
            version = api_version or workspace.source_api_version(projects[0] if projects else None) \
                or schema.api_version()
            if not dry_run:
                stage.put("package.xml", package_xml.build(members, version))
            placement["package.xml"] = "package.xml"
        written: list[str] = []
        if not dry_run and placement:
            try:
                written = [str(p) for p in stage.commit(placement)]
            except workspace.WorkspaceError as exc:
                raise CliError("OutputRefused", f"Nothing was written: {exc}") from None
            except OSError as exc:
                raise CliError("OutputFailed", f"Nothing was written to {output_dir}: {exc}",
                               actions=["Check the folder is writable and has space, then run again"]) from None
    warnings = list(res.warnings) + warning_lines(res.changes, _shown)
    unknown = [c for c in res.changes if c.rule == "unknown"]
    if unknown:
        warnings.append(f"{len(unknown)} user permission(s) are not in sf-intuser's rules table and were kept; "
                        "see the changes with rule 'unknown' (--json) and confirm the license allows them")
    result = {
        "dryRun": dry_run,
        "outputDir": str(output_dir),
        "format": fmt,
        "inputs": [{"type": f.type, "name": f.name, "path": str(f.path), "format": f.format} for f in files],
        "outputs": [{"type": o.type, "name": o.name, "path": str(output_dir / workspace.file_name(o.type, o.name, fmt)),
                     "sources": o.sources} for o in res.outputs],
        "written": written,
        "profiles": res.profile_targets,
        "classifications": [c.to_dict() for c in res.classifications],
        "connectedApps": res.connected_apps,
        "skipped": res.skipped,
        "changes": [c.to_dict() for c in res.changes],
    }

    def human() -> str:
        per_file: dict[str, dict[str, int]] = {}
        for c in res.changes:
            d = per_file.setdefault(_shown(c.file), {})
            d[c.action] = d.get(c.action, 0) + c.count
        rows = [(f, d.get("kept", 0), d.get("mapped", 0), d.get("dropped", 0), d.get("added", 0), d.get("warning", 0))
                for f, d in sorted(per_file.items())]
        parts = [table(rows, ["file", "kept", "mapped", "dropped", "added", "warnings"])] if rows else []
        if res.classifications:
            parts.append(table([(c.kind, c.name, c.verdict, c.reason) for c in res.classifications],
                               ["type", "name", "verdict", "reason"]))
        if res.profile_targets:
            parts.append(table([(p, t["apiOnlyProfile"], t["permissionSet"])
                                for p, t in sorted(res.profile_targets.items())],
                               ["profile", "users move to", "access kept in permission set"]))
        if res.skipped:
            parts.append(table([(s["type"], s["name"], _shown(s["file"]), s["reason"]) for s in res.skipped],
                               ["skipped", "name", "file", "reason"]))
        verb = "Would write" if dry_run else "Wrote"
        parts.append(f"{verb} {len(placement)} file(s) to {output_dir}" + (" (dry run)" if dry_run else ""))
        return "\n\n".join(parts)

    emit(as_json, result, human, warnings=warnings)


@functools.lru_cache(maxsize=4096)
def _shown(path: str | Path) -> str:
    """A path as the user would type it: relative to the working folder when it is below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _discover(paths: Sequence[Path]) -> list["workspace.MetadataFile"]:
    from sf_intuser import workspace

    try:
        return workspace.discover(paths)
    except workspace.WorkspaceError as exc:
        raise CliError("PathNotFound", str(exc)) from None


# --- lint -------------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--integration-permset", "integration_permsets", multiple=True, metavar="NAME",
              help="A permission set meant for integration users (repeatable). Names containing "
                   "Integration, Intuser, API Only or API User are treated so anyway.")
@json_option
def lint(paths: tuple[Path, ...], integration_permsets: tuple[str, ...], as_json: bool) -> None:
    """Check metadata before a deploy: API-only profiles, integration permission sets, license changes, schema.

    Permission sets given to integration users by the project's newest plan (intuser-runs/) or its
    sf-intuser.toml are held to the Salesforce Integration license, whatever their names. This is the
    same check the sf plugin's pre-deploy gate runs; run it as a step of its own where the gate can't
    see the deploy (--metadata-dir, deploy quick) and before commit (.pre-commit-hooks.yaml).

    Exits 1 when it finds an error, 0 otherwise (warnings alone do not fail).

    \b
    Examples:
      sf-intuser lint force-app
      sf-intuser lint force-app --integration-permset Order_Sync_Access --json
    """
    from sf_intuser import workspace
    from sf_intuser.hooks.git import committed_many
    from sf_intuser.hooks.lint import LintInput, lint as run_lint
    from sf_intuser.metadata.xml import MetadataXmlError

    files = _discover(paths)
    if not files:
        # in CI a pass on nothing is a false pass
        raise CliError("NoMetadataFound", f"No profiles or permission sets found in {', '.join(map(str, paths))}: "
                       "nothing to check.",
                       actions=["Pass a folder holding profiles/ or permissionsets/, or an SFDX project root."])
    items = []
    project = workspace.find_project(files[0].path)
    names, _sources, pre = _integration_sets(project)
    for f in files:
        try:
            items.append(LintInput(str(f.path), f.type, f.name, f.read()))
        except (workspace.WorkspaceError, MetadataXmlError) as exc:
            from sf_intuser.hooks.lint import Finding

            pre.append(Finding("error", str(f.path), "(file)", str(exc), "Fix or remove the file", "read"))
    committed = committed_many([i.file for i in items])
    findings = pre + run_lint(items, committed=lambda f: committed.get(f),
                              integration_permsets={*integration_permsets, *names})
    errors = [f for f in findings if f.severity == "error"]
    status = EXIT_FAILURE if errors else EXIT_OK
    result = {"files": len(files), "errors": len(errors), "warnings": len(findings) - len(errors),
              "findings": [f.to_dict() for f in findings]}

    def human() -> str:
        if not findings:
            return f"No problems in {len(files)} file(s)."
        rows = [(f.severity, f.file, f.element, f.message, f.fix) for f in findings]
        return table(rows, ["severity", "file", "element", "problem", "fix"]) + \
            f"\n\n{len(errors)} error(s), {len(findings) - len(errors)} warning(s) in {len(files)} file(s)."

    emit(as_json, result, human, status=status)


def _integration_sets(project: Path | None) -> tuple[set[str], list[str], list]:
    """The permission sets integration users get in ``project`` (its newest plan, its sf-intuser.toml),
    where that came from, and an error finding when its sf-intuser.toml can't be read (the check then
    can't tell, so it fails rather than pass those sets unchecked)."""
    from sf_intuser.config import ConfigError
    from sf_intuser.hooks import gate as gate_mod
    from sf_intuser.hooks.lint import Finding

    try:
        names, sources = gate_mod.integration_sets(project)
        return names, sources, []
    except ConfigError as exc:
        return set(), [], [Finding("error", str(project), "sf-intuser.toml", str(exc),
                                   "Fix the file: without it the check can't tell which permission sets "
                                   "integration users get", "config")]
    except gate_mod.ProjectFileError as exc:
        return set(), [], [Finding("error", exc.file, "(file)", str(exc) + ": the check can't tell which "
                                   "permission sets integration users get", exc.fix, "project-file")]


@main.command(hidden=True)
@click.option("--payload", "payload_file", type=click.File("rb"), default="-",
              help="The deploy description (JSON) the sf pre-deploy hook writes (default: stdin).")
@json_option
def gate(payload_file: Any, as_json: bool) -> None:
    """The pre-deploy gate that `sf project deploy start` runs through the sf-intuser plugin's hook.

    Reads the deploy's components (JSON from the plugin's scopedPreDeploy hook) and lints the profiles
    and permission sets in it, holding every permission set that integration users get in this project
    (its newest plan in intuser-runs/, its sf-intuser.toml) to the integration license. Exits 1 when
    the deploy must not go ahead. Not meant to be run by hand: use `sf-intuser lint` for that.
    """
    from sf_intuser import workspace
    from sf_intuser.hooks import gate as gate_mod
    from sf_intuser.hooks.git import committed_state
    from sf_intuser.hooks.lint import Finding, LintInput, lint as run_lint

    try:
        payload = gate_mod.read_payload(payload_file.read())
    except gate_mod.PayloadError as exc:
        raise CliError("InvalidPayload", str(exc), EXIT_USAGE,
                       actions=["Run `sf-intuser lint` on the folder instead"]) from None
    comps = gate_mod.components(payload)
    first = Path(comps[0].xml_path) if comps else Path.cwd()
    project = workspace.find_project(first) or workspace.find_project(Path.cwd())
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        # git works out what the deploy changes while the files are read and the first one parsed
        state = pool.submit(committed_state, [c.xml_path for c in comps],
                            [c.xml_path for c in comps if c.type == "Profile"])
        names, sources, pre = _integration_sets(project)
        items = []
        for c in comps:
            try:
                items.append(LintInput(c.xml_path, c.type, c.full_name, Path(c.xml_path).read_bytes()))
            except OSError as exc:
                pre.append(Finding("error", c.xml_path, "(file)", f"cannot read it: {exc.strerror or exc}",
                                   "Check the file exists and is readable", "read"))
        findings = pre + run_lint(items, committed=lambda f: state.result().get(f), integration_permsets=names,
                                  schema_of_unchanged=False)
    errors = [f for f in findings if f.severity == "error"]
    result = {"components": len(comps), "errors": len(errors), "warnings": len(findings) - len(errors),
              "integrationPermissionSets": sorted(names), "integrationPermissionSetsFrom": sources,
              "findings": [f.to_dict() for f in findings]}

    def human() -> str:
        return "\n".join(f"{f.severity}: {f.file}: {f.element}: {f.message}. Fix: {f.fix}" for f in findings) \
            or f"No problems in {len(comps)} profile(s) and permission set(s)."

    emit(as_json, result, human, status=EXIT_FAILURE if errors else EXIT_OK)


# --- doctor ---------------------------------------------------------------------------------


@main.command()
@click.option("-o", "--target-org", default=None,
              help="Username or alias of the org to check (default: sf's configured target-org, if any).")
@click.option("--sf-path", default=None, help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
@json_option
def doctor(target_org: str | None, sf_path: str | None, as_json: bool) -> None:
    """Check the tools: sf and Node and their versions; then the org (-o, else sf's target-org): that it
    answers, its session, and the seats of the Salesforce Integration license and of the
    SalesforceAPIIntegrationPsl permission set license.

    \b
    Examples:
      sf-intuser doctor
      sf-intuser doctor -o my-sandbox --json
    """
    from sf_intuser.sf import commands
    from sf_intuser.sf.runner import TESTED_VERSION, SfError, SfRunner

    checks: list[dict] = []
    warnings: list[str] = []
    actions: list[str] = []
    step = "sf found"
    try:
        runner = SfRunner(sf=sf_path)
        import shutil

        if not shutil.which(runner.sf):   # a --sf-path that is not an executable
            raise SfError("SfNotFound", f"{runner.sf} is not an executable", 127,
                          actions=["Pass --sf-path the sf executable, or run `make setup`"])
        checks.append({"check": "sf found", "ok": True, "detail": runner.sf})
        step = "sf version"
        ver, node = commands.versions(runner)
        detail = ".".join(map(str, ver)) if ver else "unknown"
        checks.append({"check": "sf version", "ok": ver is not None and ver[0] == TESTED_VERSION[0], "detail": detail})
        node_ok = node is not None and tuple(int(x) for x in node.split(".")) >= (22, 19, 0)
        checks.append({"check": "node version", "ok": node_ok, "detail": node or "unknown"})
        if not node_ok:
            actions.append("sf needs Node 22.19 or later: run `make setup`, which brings one from PyPI")
        if ver and ver < TESTED_VERSION:
            warnings.append(f"sf {detail} is older than {'.'.join(map(str, TESTED_VERSION))}, the version "
                            "sf-intuser is tested against; `make setup` installs that one")
        step = "target org"
        org = None
        try:
            org = commands.target_org(runner, target_org)
        except SfError:
            if target_org:
                raise
            checks.append({"check": "target org", "ok": True, "skipped": True,
                           "detail": "none given and no target-org configured: org checks skipped"})
        if org is not None:
            shown = f"{org.alias} ({org.username})" if org.alias else org.username
            checks.append({"check": "target org", "ok": True,
                           "detail": shown + ("" if target_org else ", sf's configured target-org")})
            step = "org reachable"
            why = commands.unreachable(org.instance_url)
            if why:
                checks.append({"check": "org reachable", "ok": False, "detail": f"{org.instance_url}: {why}"})
                actions.append(f"Start the emulated org again: sf-intuser emulator serve --alias {org.alias or 'ALIAS'}"
                               if commands.is_local(org.instance_url) else
                               "Check the network (VPN, proxy) and the org's My Domain URL, then run this again")
            else:
                checks.append({"check": "org reachable", "ok": True, "detail": org.instance_url})
                step = "org connected"
                info = commands.org_display(runner, org.alias or org.username)
                checks.append({"check": "org connected", "ok": True,
                               "detail": f"{info.username} ({info.org_id}) API v{info.api_version}"})
                step = "seats"
                lic, psl = commands.seats(runner, org.alias or org.username)
                for label, s_, missing in (
                        ("Salesforce Integration seats", lic,
                         "the org has no Salesforce Integration license (Enterprise, Unlimited, Performance and "
                         "Developer editions include it)"),
                        ("SalesforceAPIIntegrationPsl seats", psl,
                         "the org has no Salesforce API Integration permission set license")):
                    if s_ is None:
                        checks.append({"check": label, "ok": False, "detail": missing})
                    else:
                        checks.append({"check": label, "ok": True,
                                       "detail": f"{s_.used} of {s_.total} used, {s_.free} free"})
                        if s_.free == 0:
                            warnings.append(f"{label}: none free; buy more or free one before moving a user")
    except SfError as exc:
        checks.append({"check": step, "ok": False, "detail": exc.message})
        actions = exc.actions or actions
    status = EXIT_OK if all(c["ok"] for c in checks) else EXIT_FAILURE
    emit(as_json, {"checks": checks, "actions": actions},
         lambda: table([(c["check"], "skipped" if c.get("skipped") else "ok" if c["ok"] else "FAILED", c["detail"])
                        for c in checks],
                       ["check", "status", "detail"]) + "".join(f"\nTry this: {a}" for a in actions),
         status=status, warnings=warnings)


# --- reading the org --------------------------------------------------------------------------

target_org_option = click.option(
    "-o", "--target-org", default=None, metavar="ORG",
    help="Username or alias of the org (default: sf's configured target-org).")
sf_path_option = click.option("--sf-path", default=None,
                              help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
config_option = click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                             help="The config file (default: sf-intuser.toml in the project root or here).")
verbose_option = click.option("--verbose", is_flag=True,
                              help="Also say how many sf calls it made and how long they took.")
days_option = click.option("--days", type=click.IntRange(1, 180), default=None,
                           help="The login window in days (default 90, or [discover] days in sf-intuser.toml).")


class _Progress:
    """Progress lines on stderr for long work (never with --json, so stdout stays one envelope)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            echo(f"... {message}", err=True)


def _failure(exc: Exception) -> CliError:
    from sf_intuser.workflow import from_error

    return exc if isinstance(exc, Failure) else from_error(exc)


def _load_config(config_path: Path | None) -> "config_mod.Config":
    from sf_intuser import config as config_mod

    try:
        path = config_path or config_mod.find()
        if config_path is not None and not config_path.is_file():
            raise config_mod.ConfigError(f"{config_path}: no such file. Check the path given with --config")
        return config_mod.load(path) if path else config_mod.Config()
    except config_mod.ConfigError as exc:
        raise CliError("InvalidConfig", str(exc), actions=["Fix the file; the README lists its keys"]) from None


def _calls_line(runner: "SfRunner", t0: float) -> str:
    import time

    kinds: dict[str, int] = {}
    for c in runner.calls:
        verb = " ".join(a for a in c.argv[1:4] if not a.startswith("-") and "/" not in a) or " ".join(c.argv[1:2])
        kinds[verb] = kinds.get(verb, 0) + 1
    detail = ", ".join(f"{n}× sf {v}" for v, n in kinds.items())
    return f"{len(runner.calls)} sf call(s) in {time.perf_counter() - t0:.1f} s: {detail}"


def _now() -> "datetime":
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0)


def _sf_runner(sf_path: str | None, env: dict[str, str] | None = None) -> "SfRunner":
    from sf_intuser.sf.runner import SfError, SfRunner

    try:
        return SfRunner(sf=sf_path, env=env)
    except SfError as exc:
        raise _failure(exc) from None


if TYPE_CHECKING:
    from datetime import datetime

    from sf_intuser import config as config_mod
    from sf_intuser.sf.runner import SfRunner


def _discovery_human(result: dict, csv_path: Path | None, extra: str = "") -> str:
    from sf_intuser.report.discovery import discovery_text

    text = discovery_text(result["org"], result)
    if csv_path is not None:
        text += f"\nWrote {len(result['candidates'])} candidate(s) to {csv_path}"
    return text + extra


@main.command()
@target_org_option
@days_option
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the candidates to this CSV file.")
@config_option
@verbose_option
@sf_path_option
@json_option
def discover(target_org: str | None, days: int | None, csv_path: Path | None, config_path: Path | None, verbose: bool,
             sf_path: str | None, as_json: bool) -> None:
    """Find the users that can move to the Salesforce Integration license, and what it saves.

    A candidate is active, internal, on another license, and an integration by the evidence: API
    logins in the window, API Only User, or the run-as user of a client-credentials connected app.
    Anyone with a UI login (or an OAuth login through Salesforce's apps for people) is never
    proposed. Reads the org only, in a fixed number of sf calls whatever the number of users.

    \b
    Examples:
      sf-intuser discover
      sf-intuser discover -o my-sandbox --days 30 --csv candidates.csv
      sf-intuser discover --json
    """
    import time

    from sf_intuser import workflow
    from sf_intuser.report.discovery import candidates_csv

    cfg = _load_config(config_path)
    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    try:
        result, _ = workflow.discover(runner, target_org, cfg, days, _Progress(json_wanted(as_json)))
    except workflow.Failure as exc:
        raise _failure(exc) from None
    if csv_path is not None:
        from sf_intuser.workspace import write_atomic

        try:
            write_atomic(csv_path.parent, {csv_path.name: candidates_csv(result).encode("utf-8")})
            os.chmod(csv_path, 0o600)   # org data: its owner's only, as the run folder is
        except OSError as exc:
            raise CliError("OutputFailed", f"Cannot write {csv_path}: {exc.strerror or exc}",
                           actions=["Check the folder exists and is writable"]) from None
        result["csv"] = str(csv_path)
    emit(as_json, result, lambda: _discovery_human(result, csv_path,
                                                   "\n" + _calls_line(runner, t0) if verbose else ""))


@main.command()
@target_org_option
@click.option("-u", "--user", "users", multiple=True, required=True, metavar="USERNAME",
              help="A user to snapshot (repeatable).")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The run folder to create (default: intuser-runs/<org>-<timestamp>).")
@days_option
@config_option
@verbose_option
@sf_path_option
@json_option
def snapshot(target_org: str | None, users: tuple[str, ...], run_dir: Path | None, days: int | None,
             config_path: Path | None, verbose: bool, sf_path: str | None, as_json: bool) -> None:
    """Record everything a move would change for some users, before anything changes.

    Writes a run folder holding snapshot/: the users' profiles, permission sets, groups, licenses,
    package licenses, login policy, connected-app and Apex access, and the retrieved XML, with a
    SHA-256 for every file in snapshot/manifest.json. `sf-intuser plan --run-dir` plans from it.

    \b
    Examples:
      sf-intuser snapshot -u middleware@acme.com -u etl@acme.com
      sf-intuser snapshot -o my-sandbox -u etl@acme.com --run-dir intuser-runs/before-renewal --json
    """
    import time

    from sf_intuser import workflow

    cfg = _load_config(config_path)
    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    try:
        result, warnings = workflow.snapshot(runner, target_org, users, cfg, run_dir, days,
                                             _Progress(json_wanted(as_json)), _now())
    except workflow.Failure as exc:
        raise _failure(exc) from None
    emit(as_json, result,
         lambda: f"Snapshot of {len(result['users'])} user(s) written to {result['snapshot']} ({result['files']} files, "
                 "each with its SHA-256 in manifest.json)" + ("\n" + _calls_line(runner, t0) if verbose else ""),
         warnings=warnings)


def _plan_human(result: dict) -> str:
    from sf_intuser.report.discovery import money

    rows = [(u["username"], u["status"], u.get("to", ""),
             u.get("permissionSet") or u["blockers"][0]["problem"]) for u in result["users"]]
    text = table(rows, ["user", "status", "moves to profile", "access in / blocker"])
    text += f"\n\nYearly saving at list prices: {money(result['savings']['yearlySaving'])}. {result['savings']['note']}"
    text += f"\nReview {result['planMd']} (run folder {result['runDir']})."
    for w in result["intoProject"]:
        text += f"\n{w['action'].capitalize()} {w['path']}"
    return text


@main.command()
@target_org_option
@click.option("-u", "--user", "users", multiple=True, metavar="USERNAME",
              help="A user to move (repeatable; default: the [[users]] of sf-intuser.toml).")
@click.option("--all-candidates", is_flag=True, help="Plan every candidate discover finds.")
@config_option
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The run folder (default: intuser-runs/<org>-<timestamp>). One holding only a snapshot "
                   "(sf-intuser snapshot) is planned from that snapshot, without reading the org.")
@click.option("--into-project", is_flag=True,
              help="Also write the generated permission sets, groups and profiles into the SFDX project's default "
                   "package directory (source format).")
@click.option("--force", is_flag=True, help="With --into-project: overwrite project files that differ.")
@click.option("--psl", is_flag=True, help="Bind generated permission sets to SalesforceAPIIntegrationPsl "
                                          "instead of no license.")
@days_option
@verbose_option
@sf_path_option
@json_option
def plan(target_org: str | None, users: tuple[str, ...], all_candidates: bool, config_path: Path | None,
         run_dir: Path | None, into_project: bool, force: bool, psl: bool, days: int | None, verbose: bool,
         sf_path: str | None, as_json: bool) -> None:
    """Snapshot the users and plan their move, changing nothing in the org.

    Writes a run folder: snapshot/, metadata/ (deployable, Metadata API format), plan.json (ordered
    steps, each with its inverse) and plan.md (the review). Exit 0 when every user is planned, 68
    when some are blocked (each with its fix), 1 when none can be (nothing is written).

    \b
    Examples:
      sf-intuser plan -u middleware@acme.com -u etl@acme.com
      sf-intuser plan --all-candidates -o my-sandbox --json
      sf-intuser plan --into-project          # users from sf-intuser.toml
      sf-intuser plan --run-dir intuser-runs/before-renewal   # from a snapshot taken earlier
    """
    import time

    from sf_intuser import runs, workflow
    from sf_intuser.report.output import EXIT_PARTIAL

    cfg = _load_config(config_path)
    if users and all_candidates:
        raise click.UsageError("Give users with -u or ask for --all-candidates, not both.")
    existing = run_dir is not None and runs.state(run_dir) not in ("absent", "empty")
    if not users and not cfg.users and not all_candidates and not existing:
        raise click.UsageError("Which users? Name them with -u USERNAME, list them in sf-intuser.toml ([[users]] "
                               "username = \"...\"), or pass --all-candidates.")
    project = None
    if into_project:
        from sf_intuser.workspace import find_project

        project = find_project(Path.cwd())
        if project is None:
            raise CliError("NotInProject", "--into-project needs an SFDX project (a folder with sfdx-project.json "
                           "at or above the working folder)", EXIT_USAGE,
                           actions=["cd into the project, or leave out --into-project"])
    t0 = time.perf_counter()
    runners: list = []

    def factory():
        runners.append(_sf_runner(sf_path))
        return runners[-1]

    try:
        out = workflow.plan(factory, target_org, users, all_candidates, cfg, run_dir, project=project, force=force,
                            psl=psl, days=days, progress=_Progress(json_wanted(as_json)), now=_now())
    except workflow.Failure as exc:
        raise _failure(exc) from None
    extra = "\n" + _calls_line(runners[0], t0) if verbose and runners else ""
    emit(as_json, out.result, lambda: _plan_human(out.result) + extra,
         status=EXIT_PARTIAL if out.blocked else EXIT_OK, warnings=out.result["warnings"])


# --- apply, verify, rollback, report -----------------------------------------------------------

run_dir_argument = click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path, file_okay=False))
yes_option = click.option("-y", "--yes", "-p", "--no-prompt", "yes", is_flag=True,
                          help="Do it without asking (sf's -p/--no-prompt; also implied by --json).")


def _org_of_run(run_dir: Path, target_org: str | None) -> str | None:
    """``-o`` when given; else the org the run's plan was made for (its alias, else its username), so
    that a hint printed without ``-o`` works as printed. The command still checks the org's id against
    the plan's; a run folder without a readable plan leaves sf's default org."""
    if target_org:
        return target_org
    try:
        plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    org = plan.get("org") if isinstance(plan, dict) else None
    if isinstance(org, dict):
        name = org.get("alias") or org.get("username")
        return name if isinstance(name, str) and name else None
    return None


def _confirm(yes: bool, as_json: bool) -> "Callable[[list[str]], bool] | None":
    """None when no question is asked; else a question for a person at a terminal. Without a
    terminal and without --yes nothing is done: a script must say --yes."""
    if yes or json_wanted(as_json):
        return None

    def ask(lines: list[str]) -> bool:
        for line in lines:
            echo(line, err=True)
        if not sys.stdin.isatty():
            raise CliError("ConfirmationRequired", "Nothing was changed: there is no terminal to ask, and --yes was "
                           "not given", actions=["Review the lines above, then run again with --yes"])
        return click.confirm("Go ahead?", default=False, err=True)

    return ask


def _outcome_human(title: str, out: Any) -> str:
    r = out.result
    lines = [title]
    rows = [(s["username"], "moved", s["profile"], ", ".join(s["permissionSets"])) for s in r.get("successes", [])]
    rows += [(f["username"], f["outcome"], f.get("message", ""), f.get("fix", "")) for f in r.get("failures", [])]
    if rows:
        lines += ["", table(rows, ("USER", "OUTCOME", "PROFILE / REASON", "PERMISSION SETS / FIX"))]
    for d in r.get("dropped", []):
        lines.append(f"Dropped from {d['permissionSet']} (the license refuses them): {', '.join(d['permissions'])}")
    if r.get("notAssigned"):
        lines.append("Not assigned (nothing left in them): " + ", ".join(r["notAssigned"]))
    for c in r.get("changedDuringRun", []):
        lines.append(f"Changed during the run: {c['username']}: " + "; ".join(c["changes"]))
    for n in r.get("notKept", []):
        lines.append(f"Not kept: feature license {n['featureLicense']} of {n['username']} (the new license refuses "
                     f"it: {n['reason']}); rollback gives it back")
    lines.append(f"Journal: {r['journal']}")
    return "\n".join(lines)


@main.command()
@run_dir_argument
@target_org_option
@yes_option
@click.option("--resume", is_flag=True, help="Continue an apply that stopped or died; nothing is done twice.")
@verbose_option
@sf_path_option
@json_option
def apply(run_dir: Path, target_org: str | None, yes: bool, resume: bool, verbose: bool, sf_path: str | None,
          as_json: bool) -> None:
    """Carry out a plan: deploy, move the users, give their access back, verify.

    Refuses a run folder changed by hand, another org, and users whose access changed since the plan.
    Every step is written to journal.jsonl first; a run that stops or dies continues with --resume,
    or is undone with rollback. Exit 0 when every user moved, 68 when some could not (each with the
    way forward), 1 when the run stopped or a moved user differs from the plan.

    \b
    Examples:
      sf-intuser apply intuser-runs/acme-20261123-101500 -o acme
      sf-intuser apply intuser-runs/acme-20261123-101500 --resume --yes --json
    """
    import time

    from sf_intuser.migrate import apply as apply_mod

    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    try:
        out = apply_mod.apply(runner, run_dir, _org_of_run(run_dir, target_org), resume=resume,
                              confirm=_confirm(yes, as_json),
                              progress=_Progress(json_wanted(as_json)))
    except Failure as exc:
        raise exc from None
    extra = "\n" + _calls_line(runner, t0) if verbose else ""
    r = out.result
    title = (f"Moved {len(r['successes'])} of {len(r['successes']) + len(r['failures'])} user(s) to the Salesforce "
             f"Integration license in {r['org']}.")
    emit(as_json, r, lambda: _outcome_human(title, out) + f"\nNext: sf-intuser report {run_dir}" + extra,
         status=out.exit_code)


@main.command()
@run_dir_argument
@target_org_option
@verbose_option
@sf_path_option
@json_option
def verify(run_dir: Path, target_org: str | None, verbose: bool, sf_path: str | None, as_json: bool) -> None:
    """Read the org again and compare every planned user with the plan's target.

    Exit 0 when every user is as planned, 1 when anything differs (each difference is named).

    \b
    Example:
      sf-intuser verify intuser-runs/acme-20261123-101500 -o acme
    """
    import time

    from sf_intuser.migrate import apply as apply_mod

    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    out = apply_mod.verify(runner, run_dir, _org_of_run(run_dir, target_org))
    r = out.result
    rows = [(u["username"], "as planned" if u["reached"] else "differs", "; ".join(u["differences"]))
            for u in r["users"]]
    extra = "\n" + _calls_line(runner, t0) if verbose else ""
    emit(as_json, r, lambda: f"{r['reached']} of {len(r['users'])} user(s) as planned.\n\n"
         + table(rows, ("USER", "STATE", "DIFFERENCES")) + extra, status=out.exit_code)


@main.command()
@run_dir_argument
@target_org_option
@yes_option
@click.option("--delete-generated", is_flag=True,
              help="Also delete the permission sets the apply created, when no one holds them any more.")
@verbose_option
@sf_path_option
@json_option
def rollback(run_dir: Path, target_org: str | None, yes: bool, delete_generated: bool, verbose: bool,
             sf_path: str | None, as_json: bool) -> None:
    """Put every user the apply touched back as the snapshot says.

    Profile (and so license), permission set, group and license assignments with their expiry, and the
    access grants the apply made. Undoes only what the journal says was done; running it twice is
    harmless; works after an apply or a rollback died at any point. Exit 0 when every user is back,
    1 otherwise (each difference named).

    \b
    Examples:
      sf-intuser rollback intuser-runs/acme-20261123-101500 -o acme
      sf-intuser rollback intuser-runs/acme-20261123-101500 --delete-generated --yes
    """
    import time

    from sf_intuser.migrate import apply as apply_mod

    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    out = apply_mod.rollback(runner, run_dir, _org_of_run(run_dir, target_org), delete_generated=delete_generated,
                             confirm=_confirm(yes, as_json), progress=_Progress(json_wanted(as_json)))
    r = out.result
    extra = "\n" + _calls_line(runner, t0) if verbose else ""

    def human() -> str:
        if "alreadyRestored" in r:
            return "\n".join(out.lines)
        rows = [(u, "restored", "") for u in r["restored"]] + [(f["username"], "differs", f["message"])
                                                              for f in r["failures"]]
        return (f"Rolled back {len(r['restored'])} user(s).\n\n" + table(rows, ("USER", "STATE", "DIFFERENCES"))
                + f"\nJournal: {r['journal']}" + extra)

    emit(as_json, r, human, status=out.exit_code)


@main.command()
@run_dir_argument
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv"]), default=None,
              help="md, html or csv (default: from --output's extension, else md).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the report here (default: print it; html goes to RUN/report.html).")
@json_option
def report(run_dir: Path, fmt: str | None, output: Path | None, as_json: bool) -> None:
    """The migration report from the run folder (the org is not read): per user before, after, outcome
    and saving, and the license cost per month before and after.

    \b
    Examples:
      sf-intuser report intuser-runs/acme-20261123-101500
      sf-intuser report intuser-runs/acme-20261123-101500 --format html   # RUN/report.html
      sf-intuser report intuser-runs/acme-20261123-101500 --output users.csv
    """
    from sf_intuser.migrate.apply import open_run
    from sf_intuser.report import migration
    from sf_intuser.workspace import write_synced

    run = open_run(run_dir)
    fmt = fmt or (output.suffix.lstrip(".").lower() if output and output.suffix.lstrip(".").lower()
                  in ("md", "html", "csv") else "md")
    rep = migration.build(run.plan, run.journal.records)
    body = migration.render(rep, fmt)
    if output is None and fmt == "html":
        output = run_dir / "report.html"
    if output is not None:
        try:
            write_synced(output, body.encode("utf-8"), private=True)
        except OSError as exc:
            raise CliError("OutputFailed", f"{output} could not be written: {exc.strerror or exc}",
                           actions=["Check the folder is writable"]) from None
    result = {**migration.summary(rep), "format": fmt, "output": str(output) if output else None,
              "users": rep["users"]}
    emit(as_json, result, lambda: f"Wrote {output}" if output else body.rstrip("\n"))


# --- rehearse ---------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--on", "on", required=True, metavar="ORG",
              help="Alias or username of the sandbox or scratch org to rehearse in (never the plan's own org).")
@click.option("--keep", is_flag=True,
              help="Leave the rehearsal in place (stand-ins moved) instead of rolling it back.")
@click.option("--run-dir", "rehearsal_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The rehearsal's own run folder (default: next to RUN_DIR, named after it).")
@click.option("--clean-up", "clean_up", is_flag=True,
              help="Only deactivate the stand-ins left active in ORG (a kept or interrupted rehearsal).")
@config_option
@verbose_option
@sf_path_option
@json_option
def rehearse(run_dir: Path, on: str, keep: bool, rehearsal_dir: Path | None, clean_up: bool,
             config_path: Path | None, verbose: bool, sf_path: str | None, as_json: bool) -> None:
    """Rehearse a planned migration in a sandbox or scratch org: stand-ins of production's users, moved there.

    Deploys production's profiles and permission sets (from the snapshot) to ORG, creates a look-alike
    of each planned user there (a username of its own, "[sf-intuser rehearsal]" in its name, the same
    profile, sets, groups and licenses), plans them as production was planned and says where that plan
    differs, applies and verifies it, writes report.html, then rolls back and deactivates the stand-ins
    (unless --keep). Refuses the plan's own org. Exit 0 when the rehearsal moved everyone and rolled
    back, 68 when some users could not move, 1 when it failed.

    \b
    Examples:
      sf-intuser rehearse intuser-runs/acme-20261123-101500 --on acme-uat
      sf-intuser rehearse intuser-runs/acme-20261123-101500 --on my-scratch --keep --json
      sf-intuser rehearse intuser-runs/acme-20261123-101500 --on acme-uat --clean-up
    """
    import time

    from sf_intuser import workflow
    from sf_intuser.migrate.rehearse import clean_up as run_clean_up, rehearse as run_rehearsal

    t0 = time.perf_counter()
    cfg = _load_config(config_path)
    runner = _sf_runner(sf_path)
    if clean_up:
        try:
            done = run_clean_up(runner, run_dir, on, progress=_Progress(json_wanted(as_json)))
        except Exception as exc:  # noqa: BLE001 - reported as sf does, or re-raised
            raise _failure(exc) from None
        emit(as_json, done.result, lambda: f"Deactivated {len(done.result['deactivated'])} stand-in(s) in {on}"
             + "".join(f"\n  {u}" for u in done.result["deactivated"]))
        return
    try:
        out = run_rehearsal(runner, run_dir, on, cfg=cfg, now=_now(), keep=keep, rehearsal_dir=rehearsal_dir,
                            progress=_Progress(json_wanted(as_json)), plan_fn=workflow.plan)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as sf does, or re-raised
        raise _failure(exc) from None
    r = out.result

    def human() -> str:
        lines = [f"Rehearsed {r['productionRun']} in {on}: {len(r['apply']['successes'])} stand-in(s) moved "
                 f"and verified, {len(r['apply']['failures'])} not."]
        lines += [f"  {s['production']} -> {s['standIn']}" for s in r["standIns"]]
        if r["differences"]:
            lines += ["The rehearsal's plan differs from production's (it proves less):"] + \
                     [f"  {d}" for d in r["differences"]]
        else:
            lines.append("The rehearsal's plan matches production's for every user.")
        for f in r["apply"]["failures"]:
            lines.append(f"  not moved: {f['username']}: {f['message']}")
        lines.append("Rolled back; stand-ins deactivated." if r["rolledBack"] else
                     "Kept in place (--keep): roll back with sf-intuser rollback " + r["rehearsalRun"] if r["kept"]
                     else "The rollback did not finish: sf-intuser rollback " + r["rehearsalRun"])
        lines += [f"Rehearsal run folder: {r['rehearsalRun']}", f"Report: {r['report']}"]
        if verbose:
            lines.append(_calls_line(runner, t0))
        return "\n".join(lines)

    emit(as_json, r, human, status=out.exit_code,
         warnings=[f"plan differs: {d}" for d in r["differences"]])


# --- emulator ---------------------------------------------------------------------------------


@main.group()
def emulator() -> None:
    """The bundled emulated org: a rehearsal stage the real sf CLI talks to on 127.0.0.1."""


@emulator.command()
@click.option("--port", type=int, default=0, show_default="a free port", help="Port on 127.0.0.1.")
@click.option("--seed", "seed_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A seed file (JSON) describing the org (default: the bundled Acme org).")
@click.option("-a", "--alias", default="intuser-emu", show_default=True, help="Alias to log the sf CLI in under.")
@click.option("--fault", "fault_specs", multiple=True, metavar="PATTERN@N=ACTION",
              help="Inject a fault, e.g. 'PATCH .*/sobjects/User/@1=400:LICENSE_LIMIT_EXCEEDED' "
                   "(repeatable; ACTION is STATUS:CODE[:MESSAGE], drop or delay:SECONDS).")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE",
              help="Platform behaviour switch, e.g. profile_change_across_licenses=refuse, "
                   "new_profile_by_deploy=true.")
@click.option("--scale", type=click.IntRange(0, 2000), default=0, metavar="N",
              help="Add N generated integration users (profiles, sets, groups, logins) to the seed.")
@click.option("--minutes", type=float, default=60, show_default=True, help="Stop by itself after this long.")
@click.option("--no-login", is_flag=True, help="Start the org without logging the sf CLI in.")
@click.option("--keep-login", is_flag=True,
              help="Leave sf logged in to the alias after the org stops (by default sf logs out of it).")
@click.option("--sf-path", default=None, help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
@json_option
def serve(port: int, seed_file: Path | None, alias: str, fault_specs: tuple[str, ...], options: tuple[str, ...],
          scale: int, minutes: float, no_login: bool, keep_login: bool, sf_path: str | None, as_json: bool) -> None:
    """Start the emulated org, log the sf CLI in under ALIAS, and print what to type next.

    Each alias is an org of its own (its own org id and admin username), so two can run side by side.

    \b
    Examples:
      sf-intuser emulator serve
      sf-intuser emulator serve --alias rehearsal --scale 50
      sf-intuser emulator serve --port 8099 --alias rehearsal --option profile_change_across_licenses=refuse
      sf-intuser emulator serve --fault 'POST .*/sobjects/PermissionSetAssignment@2=400:LICENSE_LIMIT_EXCEEDED'
    """
    import dataclasses

    from sf_intuser.emulator import faults, seed
    from sf_intuser.emulator.server import EmulatedOrg
    from sf_intuser.sf.runner import SfError, SfRunner

    try:
        state = seed.load(seed_file, instance=alias, scale=scale)
    except (seed.SeedError, KeyError, TypeError) as exc:
        raise CliError("InvalidSeed", f"The seed {seed_file} cannot be used: {exc}",
                       actions=["Start from the bundled seed: sf_intuser/emulator/seeds/acme.json"]) from None
    for opt in options:
        name, _, value = opt.partition("=")
        try:
            state.options.set(name, value)
        except ValueError as exc:
            raise CliError("InvalidOption", f"--option {opt}: {exc}", EXIT_USAGE,
                           actions=["See `sf-intuser emulator serve --help` and the README's option table"]) from None
    try:
        parsed = [faults.parse(f) for f in fault_specs]
        org = EmulatedOrg(state, port=port, max_seconds=minutes * 60)
    except ValueError as exc:
        raise CliError("InvalidFault", str(exc), EXIT_USAGE,
                       actions=["Write it as PATTERN@N=STATUS:CODE[:MESSAGE], PATTERN@N=drop or "
                                "PATTERN@N=delay:SECONDS"]) from None
    except OSError as exc:
        raise CliError("PortUnavailable", f"Cannot listen on 127.0.0.1:{port}: {exc}", actions=[
            "Choose another --port, or leave it out for a free one"]) from None
    for f in parsed:
        org.inject(f)
    org.start()
    logged_in = False
    login = None
    try:
        if not no_login:
            if state.options.dev_hub and sys.platform.startswith("linux"):
                # a Dev Hub as developers hold one: logged in through the web server flow, with a refresh
                # token (sf org login web; the emulated org's browser follows the redirects)
                web = SfRunner(sf=sf_path, env={**os.environ, "BROWSER": f"{sys.executable} -m "
                                                 "sf_intuser.emulator.browser"}, timeout=90)
                try:
                    web.run(["org", "login", "web", "--instance-url", org.url, "--alias", alias])
                    login = "refresh token"
                except SfError:
                    login = None          # port 1717 taken, no xdg-open, ...: an access token instead
            if login is None:
                runner = SfRunner(sf=sf_path, env={**os.environ, "SF_ACCESS_TOKEN": org.access_token()},
                                  timeout=120)
                runner.run(["org", "login", "access-token", "--instance-url", org.url, "--no-prompt", "--alias",
                            alias])
                login = "access token"
            logged_in = True
    except SfError as exc:
        org.stop()
        raise CliError(exc.name, f"The emulated org started but sf could not log in: {exc.message}",
                       actions=exc.actions or ["Run `sf-intuser doctor`"]) from None
    result = {"instanceUrl": org.url, "username": state.username, "orgId": state.org_id,
              "alias": alias if logged_in else None, "login": login, "stopsAfterMinutes": minutes,
              "faults": list(fault_specs), "options": dataclasses.asdict(state.options)}
    if json_wanted(as_json):
        echo(envelope(result), as_json=True)
    else:
        import shlex
        import shutil

        echo(f"Emulated org {state.records['Organization'][state.org_id]['Name']} is up at {org.url}")
        if logged_in:
            # the commands as they will work: the sf this used, unless `sf` on PATH is that one
            sf_cmd = "sf" if runner.sf and shutil.which("sf") and Path(shutil.which("sf")).resolve() == \
                Path(runner.sf).resolve() else shlex.quote(str(runner.sf))
            me = "sf-intuser" if shutil.which("sf-intuser") else shlex.quote(str(Path(sys.executable).parent /
                                                                                  "sf-intuser"))
            echo(f"The sf CLI is logged in as {state.username} under the alias {alias}. Try:\n"
                       f"  {sf_cmd} data query -o {alias} -q \"SELECT Username, Profile.Name FROM User\"\n"
                       f"  {me} discover -o {alias}\n  {me} doctor -o {alias}\n")
        echo(f"It stops by itself after {minutes:g} minutes; Ctrl-C stops it now."
             + (f" Then sf logs out of {alias} (--keep-login keeps it)." if logged_in and not keep_login else ""),
             err=True)
    sys.stdout.flush()
    import signal

    terminated: list[int] = []

    def on_term(*_: Any) -> None:   # stopped as by Ctrl-C (the login goes too), then exit as killed by it
        terminated.append(1)
        org.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    try:
        org.stopped.wait()
    except KeyboardInterrupt:
        org.stop()
    finally:
        if logged_in and not keep_login:
            # an org that no longer answers leaves nothing behind in the user's own sf home
            try:
                SfRunner(sf=sf_path, env=dict(os.environ), timeout=60).run(
                    ["org", "logout", "-o", alias, "--no-prompt"])
                if not json_wanted(as_json):
                    echo(f"The emulated org stopped; sf logged out of {alias}.", err=True)
            except SfError as exc:
                echo(f"The emulated org stopped; sf could not log out of {alias}: {exc.message}. "
                     f"Log out yourself: sf org logout -o {alias} --no-prompt", err=True)
    if terminated:
        raise SystemExit(128 + signal.SIGTERM)   # 143, as a shell reports a process SIGTERM ended


# --- demo -------------------------------------------------------------------------------------


@main.command()
@click.option("-d", "--output-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the run folder goes (default: intuser-runs/ here).")
@click.option("--sf-path", default=None, help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
@json_option
def demo(output_dir: Path | None, sf_path: str | None, as_json: bool) -> None:
    """Rehearse the whole job on the bundled emulated org: discover, plan, apply, verify, report.

    Starts the emulated org (Acme Corp) on 127.0.0.1 under a private sf home, logs the real sf CLI in,
    runs discover, plan --all-candidates and apply (which verifies), writes report.html, and says who
    moved, who did not and why, the saving a year, and where the run folder and the report are. Your
    own sf logins are not touched; the emulated org stops when the demo ends.

    \b
    Example:
      sf-intuser demo
    """
    import shutil
    import tempfile

    from sf_intuser import workflow
    from sf_intuser.config import Config
    from sf_intuser.emulator import seed
    from sf_intuser.emulator.server import EmulatedOrg
    from sf_intuser.migrate import apply as apply_mod
    from sf_intuser.report import migration
    from sf_intuser.report.discovery import money
    from sf_intuser.sf.runner import SfError
    from sf_intuser.workspace import write_synced

    alias = "intuser-demo"
    progress = _Progress(json_wanted(as_json))
    home = Path(tempfile.mkdtemp(prefix="sf-intuser-demo-home-"))
    org = EmulatedOrg(seed.load(instance=alias), max_seconds=1800).start()
    env = {**os.environ, "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true"}
    env.pop("SF_TARGET_ORG", None)
    try:
        progress(f"Emulated org {org.state.records['Organization'][org.state.org_id]['Name']} at {org.url}; "
                 f"logging the sf CLI in under {alias} (private sf home)")
        runner = _sf_runner(sf_path, {**env, "SF_ACCESS_TOKEN": org.access_token()})
        try:
            runner.run(["org", "login", "access-token", "--instance-url", org.url, "--no-prompt", "--alias", alias])
        except SfError as exc:
            raise CliError(exc.name, f"The emulated org started but sf could not log in: {exc.message}",
                           actions=exc.actions or ["Run `sf-intuser doctor`"]) from None
        cfg = Config()
        try:
            found, _ = workflow.discover(runner, alias, cfg, None, progress)
            out = workflow.plan(lambda: runner, alias, (), True, cfg, None, progress=progress, now=_now(),
                                base=output_dir)
        except workflow.Failure as exc:
            raise _failure(exc) from None
        folder = Path(out.result["runDir"])
        done = apply_mod.apply(runner, folder, alias, progress=progress)
    finally:
        org.stop()
        shutil.rmtree(home, ignore_errors=True)
    run = apply_mod.open_run(folder)
    rep = migration.build(run.plan, run.journal.records)
    page = folder / "report.html"
    write_synced(page, migration.html_page(rep).encode("utf-8"))
    blocked = [{"username": u["username"], "reason": u["blockers"][0]["problem"], "fix": u["blockers"][0]["fix"]}
               for u in out.plan["users"] if u["status"] == "blocked"]
    blocked += [{"username": f["username"], "reason": f["message"], "fix": f.get("fix", "")}
                for f in done.result["failures"]]
    result = {"migrated": done.result["successes"], "blocked": blocked, "runDir": str(folder), "report": str(page),
              "yearlySaving": rep["cost"]["yearlySaving"], "discover": found, "plan": out.result,
              "apply": done.result}

    def human() -> str:
        lines = [_discovery_human(found, None), "", _plan_human(out.result), "",
                 _outcome_human(f"Applied: {len(done.result['successes'])} user(s) moved and verified.", done)]
        if blocked:
            lines += ["", "Not moved:"] + [f"  {b['username']}: {b['reason']}. Fix: {b['fix']}" for b in blocked]
        lines += ["", f"Saving: {money(rep['cost']['yearlySaving'])} a year at list prices "
                      f"({money(rep['cost']['monthlyBefore'])} → {money(rep['cost']['monthlyAfter'])} a month). "
                      + rep["note"],
                  f"Run folder: {folder}", f"Report: {page}",
                  "The emulated org is stopped. Try it yourself: sf-intuser emulator serve, then "
                  "sf-intuser discover -o intuser-emu"]
        return "\n".join(lines)

    emit(as_json, result, human, status=done.exit_code)


# --- entry point ------------------------------------------------------------------------------


FLAGS_DIR_HELP = "Import flag values from a directory (sf's --flags-dir: a file per flag, a value per line)."


def _with_flags_dir(group: click.Group) -> None:
    """Every command takes sf's global ``--flags-dir``; :func:`expand_flags_dir` reads it before click."""
    for cmd in group.commands.values():
        if isinstance(cmd, click.Group):
            _with_flags_dir(cmd)
        elif not any(p.name == "flags_dir" for p in cmd.params):
            cmd.params.append(click.Option(["--flags-dir", "flags_dir"], metavar="DIR", expose_value=False, show_default=False,
                                           help=FLAGS_DIR_HELP))


def _command_of(argv: Sequence[str]) -> click.Command | None:
    cmd: click.Command = main
    for tok in argv:
        if not isinstance(cmd, click.Group) or tok.startswith("-"):
            break
        nxt = cmd.commands.get(tok)
        if nxt is None:
            break
        cmd = nxt
    return None if isinstance(cmd, click.Group) else cmd


def expand_flags_dir(argv: list[str]) -> list[str]:
    """sf's ``--flags-dir DIR``, done as sf's own preparse hook does it (@salesforce/cli
    dist/hooks/preparse.js), because sf runs that hook only for commands that parse through
    SfCommand, and ``sf intuser`` hands argv on untouched: each file in DIR is named after a flag
    (``target-org``, ``o``, ``json``; an extension is dropped); each line that is not a ``#``/``//``
    comment is a value (an empty file switches a boolean on; a ``.json`` file is one value). A flag
    given on the command line wins over its file, except for flags that take several values, which
    get both. A missing DIR adds nothing, as in sf."""
    if "--flags-dir" not in argv:
        return argv
    at = argv.index("--flags-dir")
    folder = argv[at + 1] if at + 1 < len(argv) else ""
    rest = argv[:at] + argv[at + 2:] if folder and not folder.startswith("-") else argv[:at] + argv[at + 1:]
    if not folder or folder.startswith("-"):
        return rest
    cmd = _command_of(rest)
    if cmd is None:
        return rest
    import json as json_mod

    options = [p for p in cmd.params if isinstance(p, click.Option)]
    ignore: set[str] = set()
    for o in options:
        if o.multiple:
            continue
        given = [x for x in o.opts + o.secondary_opts if x in rest or any(a.startswith(x + "=") for a in rest)]
        if given:
            ignore.update(x.lstrip("-") for x in o.opts + o.secondary_opts)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return rest
    added: list[str] = []
    for fname in names:
        stem, ext = os.path.splitext(fname)
        if fname in ignore or stem in ignore:
            continue
        try:
            contents = (Path(folder) / fname).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if ext == ".json":
            try:
                values = [json_mod.dumps(json_mod.loads(contents), separators=(",", ":"))]
            except ValueError:
                raise CliError("InvalidFlagsDir", f"--flags-dir {folder}: {fname} is not valid JSON", EXIT_USAGE,
                               actions=[f"Fix {Path(folder) / fname} or remove it"]) from None
        else:
            lines = contents.strip().split("\r\n" if "\r\n" in contents else "\n")
            values = [ln for ln in lines if not ln.strip().startswith(("#", "//"))]
        for value in values:
            added.append(f"-{stem}" if len(stem) == 1 else f"--{stem}")
            if value:
                added.append(value)
    return rest + added


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from sf_intuser import tempfiles

    tempfiles.clean_leftovers()   # what a killed run left (request bodies, retrieves) goes now
    as_json = "--json" in argv or json_wanted(False)
    try:
        argv = expand_flags_dir(argv)
        as_json = as_json or "--json" in argv
        main.main(args=argv, prog_name="sf-intuser", standalone_mode=False)
        return EXIT_OK
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        if as_json:
            echo(error_envelope("UsageError", exc.format_message(), EXIT_USAGE), as_json=True)
        else:
            exc.show()
        return EXIT_USAGE
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
            return _fail(as_json, CliError("Interrupted", INTERRUPTED, EXIT_INTERRUPTED))
        echo("Aborted.", err=True)
        return EXIT_FAILURE
    except CliError as exc:
        return _fail(as_json, exc)
    except KeyboardInterrupt:
        return _fail(as_json, CliError("Interrupted", INTERRUPTED, EXIT_INTERRUPTED))
    except Exception as exc:   # noqa: BLE001 - the last line of defence: never a traceback on the terminal
        log = write_crash_log(argv)
        message = (f"sf-intuser failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]}); "
                   + (f"the details are in {log}" if log else "the details could not be written to a log file"))
        return _fail(as_json, CliError("UnexpectedError", message, EXIT_FAILURE, actions=[
            "Run the command again; if it fails the same way, report it with the log file"]))


INTERRUPTED = "Stopped (Ctrl-C) before the command finished"


def _fail(as_json: bool, exc: Failure) -> int:
    """An error as sf prints it: its envelope with --json, else ``Error (Name): message`` and the fixes."""
    if as_json:
        echo(error_envelope(exc.name, exc.message, exc.exit_code, exc.actions, exc.data), as_json=True)
    else:
        echo(f"Error ({exc.name}): {exc.message}", err=True)
        for a in exc.actions:
            echo(f"  Try this: {a}", err=True)
    return exc.exit_code


#: 128 + SIGINT, as a shell reports a command that Ctrl-C stopped
EXIT_INTERRUPTED = 130


def write_crash_log(argv: Sequence[str]) -> Path | None:
    """The traceback of an unexpected error, in a file only its user can read (it may name org data):
    ``$SF_INTUSER_LOG_DIR``, else ``$XDG_CACHE_HOME/sf-intuser/logs`` or ``~/.cache/sf-intuser/logs``,
    else the temporary folder. Returns the file, or None when none could be written."""
    import tempfile
    import time
    import traceback

    text = (f"sf-intuser {__version__}\nargv: {list(argv)!r}\n\n" + traceback.format_exc()).encode("utf-8", "replace")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for folder in (os.environ.get("SF_INTUSER_LOG_DIR"), str(Path(cache) / "sf-intuser" / "logs"),
                   tempfile.gettempdir()):
        if not folder:
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
            path = Path(folder) / f"sf-intuser-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


_with_flags_dir(main)


def entry() -> None:
    sys.exit(run())


if __name__ == "__main__":
    entry()
