"""The pre-deploy gate the sf plugin's hook runs (hidden: `sf-intuser lint` is for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sf_intuser.cli.common import (
    CliError,
    emit,
    json_option,
    main,
)
from sf_intuser.cli.metadata import _integration_sets
from sf_intuser.report.output import (
    exit_code,
    EXIT_USAGE,
)


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
    from sf_intuser.hooks.lint import Finding, LintInput
    from sf_intuser.hooks.lint import lint as run_lint

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

    emit(as_json, result, human, status=exit_code(failed=bool(errors)))
