"""Commands on metadata files, without an org: convert and lint."""

from __future__ import annotations

from typing import Any

from pathlib import Path

import click

from sf_intuser.cli.common import (
    CliError,
    _discover,
    _shown,
    emit,
    json_option,
    main,
)
from sf_intuser.report.output import (
    exit_code,
    table,
    warning_lines,
)

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
    from sf_intuser.migrate.convert import DuplicateInputs, Input
    from sf_intuser.migrate.convert import convert as run_convert

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
    from sf_intuser.hooks.lint import LintInput
    from sf_intuser.hooks.lint import lint as run_lint
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
    status = exit_code(failed=bool(errors))
    result = {"files": len(files), "errors": len(errors), "warnings": len(findings) - len(errors),
              "findings": [f.to_dict() for f in findings]}

    def human() -> str:
        if not findings:
            return f"No problems in {len(files)} file(s)."
        rows = [(f.severity, f.file, f.element, f.message, f.fix) for f in findings]
        return table(rows, ["severity", "file", "element", "problem", "fix"]) + \
            f"\n\n{len(errors)} error(s), {len(findings) - len(errors)} warning(s) in {len(files)} file(s)."

    emit(as_json, result, human, status=status)


def _integration_sets(project: Path | None) -> tuple[set[str], list[str], list[Any]]:
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
