# shellcheck shell=bash
# Redis component of infra.sh. Sourced, never executed.
#
# Debian's redis-server, run with our own config on 127.0.0.1:<port>,
# daemonized, with pid file, log and working directory under $MC_LOCAL_DIR.
# No persistence (save "" and appendonly no): Redis is a cache here.

REDIS_DIR=$MC_LOCAL_DIR/redis
REDIS_CONF=$REDIS_DIR/redis.conf
REDIS_PIDFILE=$REDIS_DIR/redis.pid
REDIS_LOG=$LOG_DIR/redis.log

redis_ensure_installed() {
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
    apt_install redis-server redis-tools
    command -v redis-server >/dev/null 2>&1 || die "redis: installed redis-server but the binary is not on PATH"
}

redis_pid() {
    local pid
    pid=$(read_pidfile "$REDIS_PIDFILE")
    if [ -n "$pid" ] && pid_matches "$pid" "redis-server" && pid_matches "$pid" ":$REDIS_PORT"; then
        printf '%s\n' "$pid"
    fi
}

redis_ping() {
    [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
}

redis_write_config() {
    mkdir -p "$REDIS_DIR"
    cat >"$REDIS_CONF" <<EOF
# Written by infrastructure/local/redis.sh on every start; edit stack.json instead.
bind $REDIS_HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile $REDIS_PIDFILE
logfile $REDIS_LOG
loglevel notice
dir $REDIS_DIR
databases 16
save ""
appendonly no
EOF
}

redis_up() {
    local pid
    redis_ensure_installed
    pid=$(redis_pid)
    if [ -n "$pid" ]; then
        log "redis: already running (pid $pid) on $REDIS_HOST:$REDIS_PORT"
        return 0
    fi
    require_port_free redis "$REDIS_HOST" "$REDIS_PORT"
    redis_write_config
    rm -f "$REDIS_PIDFILE"
    log "redis: starting $(redis-server --version | awk '{sub("v=", "", $3); print $3}') on $REDIS_HOST:$REDIS_PORT (log: $REDIS_LOG)"
    if ! redis-server "$REDIS_CONF" >>"$REDIS_LOG" 2>&1 9>&- || ! wait_until 20 redis_ping; then
        show_log "$REDIS_LOG"
        die "redis: failed to start (see $REDIS_LOG)"
    fi
    wait_until 5 test -s "$REDIS_PIDFILE" || true
    pid=$(redis_pid)
    log "redis: started (pid ${pid:-?})"
}

redis_down() {
    local pid
    pid=$(redis_pid)
    if [ -z "$pid" ]; then
        log "redis: not running"
        return 0
    fi
    log "redis: stopping (pid $pid)"
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    stop_pid "$pid" 15 redis
    rm -f "$REDIS_PIDFILE"
    log "redis: stopped"
}

redis_status() {
    local pid
    pid=$(redis_pid)
    if [ -n "$pid" ]; then
        if command -v redis-cli >/dev/null 2>&1 && redis_ping; then
            log "redis: running (pid $pid) on $REDIS_HOST:$REDIS_PORT"
        else
            log "redis: process running (pid $pid) but $REDIS_HOST:$REDIS_PORT does not answer PING"
        fi
    elif port_open "$REDIS_HOST" "$REDIS_PORT"; then
        log "redis: stopped; $REDIS_HOST:$REDIS_PORT is taken by another process ($(port_owner "$REDIS_PORT"))"
    else
        log "redis: stopped"
    fi
}

redis_urls() {
    log "  redis://$REDIS_HOST:$REDIS_PORT/0"
}
