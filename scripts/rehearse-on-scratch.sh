#!/usr/bin/env bash
# Rehearse a planned migration in a scratch org.
#
#   scripts/rehearse-on-scratch.sh RUN_DIR ALIAS [--deploy PATH]... [--keep] [--json]
#       rehearse in the scratch org (or sandbox) already logged in under ALIAS
#   scripts/rehearse-on-scratch.sh RUN_DIR ALIAS --create --dev-hub HUB [--deploy PATH]... [--keep] [--json]
#       first create ALIAS from config/project-scratch-def.json with the Dev Hub HUB (one day, without
#       source tracking: nothing done in a rehearsal org is pulled back into the project)
#   --deploy PATH: deploy this source folder of the SFDX project (run from the project) before rehearsing
#
# A scratch org starts blank: rehearse creates production's custom profiles there, but the Apex
# classes and pages they name must be deployed first (--deploy force-app), and connected apps,
# permission set licenses and managed packages are not there unless the project brings them; rehearse
# then says what is missing (StandInIncomplete) or how its plan differs from production's. A sandbox
# copied from production has them all.
#
# Exit codes are sf-intuser's: 0 rehearsed and rolled back, 68 some stand-ins could not move, 1 failed,
# 2 usage. Uses SF_INTUSER (default: sf-intuser on PATH, else the checkout's .venv) and sf on PATH.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
run_dir=$1; alias=$2; shift 2
create=0; hub=""; pass=(); deploys=()
while [ $# -gt 0 ]; do
  case $1 in
    --create) create=1 ;;
    --dev-hub) [ $# -ge 2 ] || usage; hub=$2; shift ;;
    --deploy) [ $# -ge 2 ] || usage; deploys+=("$2"); shift ;;
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
  if ! out=$("$sf" org create scratch --definition-file "$here/config/project-scratch-def.json" \
      --alias "$alias" --target-dev-hub "$hub" --duration-days 1 --wait 15 --no-track-source --json 2>&1); then
    echo "Creating the scratch org failed:" >&2; echo "$out" >&2; exit 1
  fi
fi

if ! out=$("$sf" org display --target-org "$alias" --json 2>&1); then
  echo "sf can't reach an org under $alias. Log in to it (sf org login web --alias $alias), or create a" \
       "scratch org: $0 $run_dir $alias --create --dev-hub HUB. sf said:" >&2
  echo "$out" >&2
  exit 1
fi
for path in ${deploys[@]+"${deploys[@]}"}; do
  echo "Deploying $path to $alias" >&2
  if ! out=$("$sf" project deploy start --source-dir "$path" --target-org "$alias" --json 2>&1); then
    echo "Deploying $path to $alias failed:" >&2; echo "$out" >&2; exit 1
  fi
done
exec "$intuser" rehearse "$run_dir" --on "$alias" ${pass[@]+"${pass[@]}"}
