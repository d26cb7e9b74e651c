#!/usr/bin/env bash
# Local infrastructure without Docker: PostgreSQL, Redis and Kafka as plain
# processes, configured from infrastructure/local/stack.json.
#
#   infra.sh up     [postgres|redis|kafka]   install if needed, start, provision
#   infra.sh down   [postgres|redis|kafka]   stop (graceful, then kill)
#   infra.sh status [postgres|redis|kafka]   print each component's state
#
# No component means all of them. Everything lives under $MC_LOCAL_DIR
# (default <repo>/.local). See README.md next to this file.
set -euo pipefail

usage() {
    [ -z "${1:-}" ] || printf '[infra] ERROR: %s\n' "$1" >&2
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

ACTION=${1:-}
COMPONENT=${2:-all}
case "$ACTION" in
up | down | status) ;;
-h | --help | help | "") usage ;;
*) usage "unknown action '$ACTION'" ;;
esac
case "$COMPONENT" in
all) COMPONENTS=(postgres redis kafka) ;;
postgres | redis | kafka) COMPONENTS=("$COMPONENT") ;;
*) usage "unknown component '$COMPONENT'" ;;
esac
[ "$#" -le 2 ] || usage "too many arguments"

# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
prepare_local_dir
load_stack
# shellcheck source=SCRIPTDIR/postgres.sh
. "$INFRA_DIR/postgres.sh"
# shellcheck source=SCRIPTDIR/redis.sh
. "$INFRA_DIR/redis.sh"
# shellcheck source=SCRIPTDIR/kafka.sh
. "$INFRA_DIR/kafka.sh"

# One infra.sh at a time per $MC_LOCAL_DIR (e.g. parallel make targets). The
# daemons are started with fd 9 closed so that they do not hold the lock.
if [ "$ACTION" != status ] && command -v flock >/dev/null 2>&1; then
    exec 9>"$MC_LOCAL_DIR/.infra.lock"
    if ! flock -n 9; then
        log "another infra.sh is running on $MC_LOCAL_DIR; waiting for it"
        flock -w 600 9 || die "timed out waiting for the other infra.sh"
    fi
fi

START=$SECONDS
case "$ACTION" in
up)
    for c in "${COMPONENTS[@]}"; do "${c}_up"; done
    log "up in $((SECONDS - START))s; connection URLs:"
    for c in "${COMPONENTS[@]}"; do "${c}_urls"; done
    ;;
down)
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do "${COMPONENTS[$i]}_down"; done
    ;;
status)
    for c in "${COMPONENTS[@]}"; do "${c}_status"; done
    log "local dir: $MC_LOCAL_DIR"
    ;;
esac
