#!/usr/bin/env bash
# Rehearse a planned migration in a scratch org.
#
#   scripts/rehearse-on-scratch.sh RUN_DIR ALIAS [--keep] [--json]
#       rehearse in the scratch org (or sandbox) already logged in under ALIAS
#   scripts/rehearse-on-scratch.sh RUN_DIR ALIAS --create --dev-hub HUB [--keep] [--json]
#       first create ALIAS from config/project-scratch-def.json with the Dev Hub HUB (one day), then rehearse
#
# A scratch org starts blank: production's custom profiles are created by the rehearsal's deploy, but
# its connected apps, permission set licenses and managed packages are not there unless the project
# deploys or installs them first; rehearse then says what is missing (StandInIncomplete) or how its
# plan differs from production's. A sandbox copied from production has them all.
#
# Exit codes are sf-intuser's: 0 rehearsed and rolled back, 68 some stand-ins could not move, 1 failed,
# 2 usage. Uses SF_INTUSER (default: sf-intuser on PATH, else the checkout's .venv) and sf on PATH.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
run_dir=$1; alias=$2; shift 2
create=0; hub=""; pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --create) create=1 ;;
    --dev-hub) [ $# -ge 2 ] || usage; hub=$2; shift ;;
    --keep|--json) pass+=("$1") ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
  shift
done

here=$(cd "$(dirname "$0")/.." && pwd)
intuser=${SF_INTUSER:-$(command -v sf-intuser || echo "$here/.venv/bin/sf-intuser")}
sf=${SF_INTUSER_SF:-$(command -v sf || echo "$here/.venv/bin/sf")}

if [ "$create" = 1 ]; then
  [ -n "$hub" ] || { echo "--create needs --dev-hub HUB (the alias of a Dev Hub you are logged in to)" >&2; exit 2; }
  echo "Creating scratch org $alias with Dev Hub $hub (config/project-scratch-def.json, 1 day)" >&2
  "$sf" org create scratch --definition-file "$here/config/project-scratch-def.json" --alias "$alias" \
    --target-dev-hub "$hub" --duration-days 1 --wait 15 --json >/dev/null
fi

if ! "$sf" org display --target-org "$alias" --json >/dev/null 2>&1; then
  echo "No org is logged in under $alias. Log in to it (sf org login web --alias $alias), or create a" \
       "scratch org: $0 $run_dir $alias --create --dev-hub HUB" >&2
  exit 1
fi
exec "$intuser" rehearse "$run_dir" --on "$alias" ${pass[@]+"${pass[@]}"}
