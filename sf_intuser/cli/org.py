"""Commands about the tools and the org: doctor."""

from __future__ import annotations

import click

from sf_intuser.cli.common import (
    emit,
    json_option,
    main,
)
from sf_intuser.report.output import (
    exit_code,
    table,
)

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
    from sf_intuser import workflow

    found = workflow.doctor(sf_path, target_org)
    checks, actions, warnings = found.checks, found.actions, found.warnings
    status = exit_code(failed=not found.ok)
    emit(as_json, {"checks": checks, "actions": actions},
         lambda: table([(c["check"], "skipped" if c.get("skipped") else "ok" if c["ok"] else "FAILED", c["detail"])
                        for c in checks],
                       ["check", "status", "detail"]) + "".join(f"\nTry this: {a}" for a in actions),
         status=status, warnings=warnings)
