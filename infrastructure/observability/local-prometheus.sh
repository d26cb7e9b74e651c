#!/usr/bin/env bash
# Prometheus for the docker-less stack: Debian's prometheus package, run as a plain
# process with the generated infrastructure/local/prometheus.yml (every service and
# the gateway's status listener on 127.0.0.1).
#
#   local-prometheus.sh up       install the Debian package if needed, start on 127.0.0.1:9090
#   local-prometheus.sh down     stop it (graceful, then kill)
#   local-prometheus.sh status   whether it runs, and the health of its scrape targets
#
# Data, pid file and log live under $MC_LOCAL_DIR (default <repo>/.local).
# MC_PROMETHEUS_PORT changes the port, MC_PROMETHEUS_RETENTION the retention (2d).
set -euo pipefail

ACTION=${1:-}
case "$ACTION" in
up | down | status) ;;
*)
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

# shellcheck source=SCRIPTDIR/../local/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../local/common.sh"
prepare_local_dir

PROM_HOST=127.0.0.1
PROM_PORT=${MC_PROMETHEUS_PORT:-9090}
PROM_RETENTION=${MC_PROMETHEUS_RETENTION:-2d}
PROM_CONFIG=$REPO_ROOT/infrastructure/local/prometheus.yml
PROM_DIR=$MC_LOCAL_DIR/prometheus
PROM_PIDFILE=$PROM_DIR/prometheus.pid
PROM_LOG=$LOG_DIR/prometheus.log
PROM_URL=http://$PROM_HOST:$PROM_PORT

prometheus_pid() {
    local pid
    pid=$(read_pidfile "$PROM_PIDFILE")
    if [ -n "$pid" ] && pid_matches "$pid" prometheus && pid_matches "$pid" "$PROM_DIR"; then
        printf '%s\n' "$pid"
    fi
}

# http_get URL: the body of a 200 answer (stdlib Python: curl may not be installed).
http_get() {
    "$(system_python)" - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.stdout.write(response.read().decode())
PY
}

prometheus_ready() { http_get "$PROM_URL/-/ready" >/dev/null 2>&1; }

prometheus_up() {
    command -v prometheus >/dev/null 2>&1 || apt_install prometheus
    command -v prometheus >/dev/null 2>&1 || die "prometheus: installed the package but the binary is not on PATH"
    [ -f "$PROM_CONFIG" ] || die "prometheus: $PROM_CONFIG is missing (run make generate)"
    local pid
    pid=$(prometheus_pid)
    if [ -n "$pid" ]; then
        log "prometheus: already running (pid $pid) on $PROM_URL"
        return 0
    fi
    require_port_free prometheus "$PROM_HOST" "$PROM_PORT"
    if command -v promtool >/dev/null 2>&1; then
        promtool check config "$PROM_CONFIG" >>"$PROM_LOG" 2>&1 ||
            { show_log "$PROM_LOG"; die "prometheus: $PROM_CONFIG is not a valid config"; }
    fi
    mkdir -p "$PROM_DIR/data"
    log "prometheus: starting $(prometheus --version 2>&1 | awk 'NR==1 {print $3}') on $PROM_URL (log: $PROM_LOG)"
    # fd 9 closed: the daemon must not hold infra.sh's lock.
    nohup prometheus \
        --config.file="$PROM_CONFIG" \
        --storage.tsdb.path="$PROM_DIR/data" \
        --storage.tsdb.retention.time="$PROM_RETENTION" \
        --web.listen-address="$PROM_HOST:$PROM_PORT" \
        >>"$PROM_LOG" 2>&1 9>&- </dev/null &
    printf '%s\n' "$!" >"$PROM_PIDFILE"
    if ! wait_until 60 prometheus_ready; then
        show_log "$PROM_LOG"
        die "prometheus: did not become ready (see $PROM_LOG)"
    fi
    log "prometheus: started (pid $(prometheus_pid)); targets: $PROM_URL/targets"
}

prometheus_down() {
    local pid
    pid=$(prometheus_pid)
    if [ -z "$pid" ]; then
        log "prometheus: not running"
        return 0
    fi
    log "prometheus: stopping (pid $pid)"
    stop_pid "$pid" 30 prometheus
    rm -f "$PROM_PIDFILE"
    log "prometheus: stopped"
}

prometheus_status() {
    local pid
    pid=$(prometheus_pid)
    if [ -z "$pid" ]; then
        log "prometheus: stopped"
        return 0
    fi
    log "prometheus: running (pid $pid) on $PROM_URL"
    local targets
    targets=$(http_get "$PROM_URL/api/v1/targets" 2>/dev/null) || { warn "prometheus: cannot read its targets"; return 0; }
    "$(system_python)" - "$targets" <<'PY'
import json, sys
targets = json.loads(sys.argv[1])["data"]["activeTargets"]
for target in sorted(targets, key=lambda t: t["labels"]["job"]):
    job, health, url = target["labels"]["job"], target["health"], target["scrapeUrl"]
    print(f"[infra]   {job:<10} {health:<8} {url} {target.get('lastError') or ''}".rstrip())
PY
}

"prometheus_$ACTION"
