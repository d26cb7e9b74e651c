# shellcheck shell=bash
# PostgreSQL component of infra.sh. Sourced, never executed.
#
# One cluster under $MC_LOCAL_DIR/postgres/data, run with pg_ctl (no systemd),
# listening on 127.0.0.1:<port> only, with its unix socket under
# $MC_LOCAL_DIR/postgres/run. PostgreSQL refuses to run as root, so as root the
# server runs as the "postgres" OS user (created by the Debian package).
# Authentication: the superuser "postgres" over the unix socket (peer, OS user
# mapped), every other role with scram-sha-256 passwords.

PG_BIN=""

if [ "$(id -u)" -eq 0 ]; then
    PG_OS_USER=${MC_PG_OS_USER:-postgres}
else
    PG_OS_USER=$(id -un)
fi

# The cluster lives in $MC_LOCAL_DIR/postgres when the server's OS user can reach
# it. A checkout under a private folder (e.g. /root, mode 700) is not reachable for
# "postgres": then the cluster goes to /var/lib/microcommerce/<hash of the checkout>
# instead, and $MC_LOCAL_DIR/postgres is a link to it, so each checkout keeps its own.
pg_resolve_paths() {
    PG_DIR=$MC_LOCAL_DIR/postgres
    if [ "$(id -u)" -eq 0 ] && id -u "$PG_OS_USER" >/dev/null 2>&1 &&
        ! (cd / && runuser -u "$PG_OS_USER" -- test -x "$MC_LOCAL_DIR"); then
        PG_DIR=/var/lib/microcommerce/$(printf '%s' "$MC_LOCAL_DIR" | sha256sum | cut -c1-12)/postgres
        mkdir -p "$PG_DIR"
        chown "$PG_OS_USER:" "$(dirname "$PG_DIR")" "$PG_DIR"
        [ -L "$MC_LOCAL_DIR/postgres" ] || ln -sfn "$PG_DIR" "$MC_LOCAL_DIR/postgres"
    fi
    PG_DATA=$PG_DIR/data
    PG_SOCK=$PG_DIR/run
    PG_LOG=$PG_DIR/postgres.log
}
pg_resolve_paths

# Runs a command as the OS user owning the cluster, from a neutral directory.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

pg_find_bin() {
    local dir best="" version=""
    if [ -n "${MC_PG_BIN:-}" ]; then
        PG_BIN=$MC_PG_BIN
        return 0
    fi
    # An existing cluster must be run by the major version that created it.
    [ -f "$PG_DATA/PG_VERSION" ] && read -r version <"$PG_DATA/PG_VERSION"
    if [ -n "$version" ]; then
        dir=/usr/lib/postgresql/$version/bin
        if [ -x "$dir/postgres" ] && [ -x "$dir/pg_ctl" ]; then
            PG_BIN=$dir
            return 0
        fi
        return 1
    fi
    while read -r dir; do
        if [ -x "$dir/postgres" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then best=$dir; fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [ -n "$best" ] || return 1
    PG_BIN=$best
}

pg_ensure_installed() {
    pg_find_bin && return 0
    if [ -f "$PG_DATA/PG_VERSION" ]; then
        die "postgres: $PG_DATA was created by PostgreSQL $(cat "$PG_DATA/PG_VERSION"), whose server is not installed (install postgresql-$(cat "$PG_DATA/PG_VERSION") or remove $PG_DIR)"
    fi
    apt_install postgresql
    pg_find_bin || die "postgres: installed the postgresql package but found no server under /usr/lib/postgresql/*/bin"
}

# Prints the postmaster pid when our cluster is running.
pg_pid() {
    local pid
    pid=$(read_pidfile "$PG_DATA/postmaster.pid")
    if [ -n "$pid" ] && pid_matches "$pid" "$PG_DATA"; then printf '%s\n' "$pid"; fi
}

pg_prepare_dirs() {
    if [ "$(id -u)" -eq 0 ] && ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        die "postgres: OS user '$PG_OS_USER' does not exist (it comes with the postgresql package; or set MC_PG_OS_USER)"
    fi
    pg_resolve_paths  # again: the OS user may only exist since the install just now
    mkdir -p "$PG_DIR" "$PG_DATA" "$PG_SOCK"
    touch "$PG_LOG"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_OS_USER:" "$PG_DIR" "$PG_DATA" "$PG_SOCK" "$PG_LOG"
    fi
    chmod 700 "$PG_DATA"
    chmod 755 "$PG_DIR" "$PG_SOCK"
    if ! as_pg test -w "$PG_DATA" -a -w "$PG_LOG"; then
        die "postgres: OS user '$PG_OS_USER' cannot reach $PG_DATA (a parent directory is not traversable for it: give it o+x, or set MC_LOCAL_DIR to a place it can reach)"
    fi
}

pg_initdb() {
    [ -s "$PG_DATA/PG_VERSION" ] && return 0
    # No PG_VERSION means no cluster (or a half-finished initdb): start afresh.
    find "$PG_DATA" -mindepth 1 -delete
    log "postgres: initializing a new cluster in $PG_DATA"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 --no-instructions >>"$PG_LOG" 2>&1; then
        show_log "$PG_LOG"
        die "postgres: initdb failed (see $PG_LOG)"
    fi
    as_pg tee "$PG_DATA/pg_ident.conf" >/dev/null <<EOF
# MAPNAME  SYSTEM-USERNAME  PG-USERNAME
mc         $PG_OS_USER      postgres
EOF
    as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by infrastructure/local/postgres.sh.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer map=mc
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
host    all       all       ::1/128        scram-sha-256
EOF
    printf "\ninclude_if_exists = 'microcommerce.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

pg_write_config() {
    as_pg tee "$PG_DATA/microcommerce.conf" >/dev/null <<EOF
# Written by infrastructure/local/postgres.sh on every start; edit stack.json instead.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
synchronous_commit = off
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
}

# Roles, databases and privileges from stack.json; idempotent, run on every `up`.
pg_provision_sql() {
    local i name user password
    printf '%s\n' "REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;"
    for i in "${!PG_DB_NAMES[@]}"; do
        name=${PG_DB_NAMES[$i]}
        user=${PG_DB_USERS[$i]}
        password=${PG_DB_PASSWORDS[$i]//\'/\'\'}
        cat <<EOF
SELECT 'CREATE ROLE "$user"' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$user') \gexec
ALTER ROLE "$user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$password';
SELECT 'CREATE DATABASE "$name" OWNER "$user"' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$name') \gexec
ALTER DATABASE "$name" OWNER TO "$user";
REVOKE ALL ON DATABASE "$name" FROM PUBLIC;
GRANT ALL ON DATABASE "$name" TO "$user";
\connect "$name"
ALTER SCHEMA public OWNER TO "$user";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
\connect postgres
EOF
    done
}

pg_provision() {
    local out
    if ! out=$(pg_provision_sql | as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres 2>&1); then
        printf '%s\n' "$out" >&2
        die "postgres: provisioning roles/databases failed"
    fi
    log "postgres: ${#PG_DB_NAMES[@]} databases provisioned (${PG_DB_NAMES[*]})"
}

postgres_up() {
    local pid
    pg_ensure_installed
    pid=$(pg_pid)
    if [ -n "$pid" ]; then
        log "postgres: already running (pid $pid) on $PG_HOST:$PG_PORT"
    else
        require_port_free postgres "$PG_HOST" "$PG_PORT"
        pg_prepare_dirs
        pg_initdb
        pg_write_config
        log "postgres: starting PostgreSQL $(basename "$(dirname "$PG_BIN")") on $PG_HOST:$PG_PORT (log: $PG_LOG)"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s start >/dev/null 2>&1 9>&-; then
            show_log "$PG_LOG"
            die "postgres: failed to start (see $PG_LOG)"
        fi
        pid=$(pg_pid)
        log "postgres: started (pid ${pid:-?})"
    fi
    pg_provision
}

postgres_down() {
    local pid
    pid=$(pg_pid)
    if [ -z "$pid" ]; then
        log "postgres: not running"
        return 0
    fi
    pg_find_bin || die "postgres: running, but its pg_ctl is not installed any more"
    log "postgres: stopping (pid $pid)"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 -s stop >/dev/null 2>&1; then
        warn "postgres: fast shutdown timed out; trying immediate shutdown"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 10 -s stop >/dev/null 2>&1 || true
        stop_pid "$pid" 5 postgres
    fi
    log "postgres: stopped"
}

postgres_status() {
    local pid
    pid=$(pg_pid)
    if [ -n "$pid" ]; then
        if port_open "$PG_HOST" "$PG_PORT"; then
            log "postgres: running (pid $pid) on $PG_HOST:$PG_PORT, data $PG_DATA"
        else
            log "postgres: process running (pid $pid) but $PG_HOST:$PG_PORT does not answer"
        fi
    elif port_open "$PG_HOST" "$PG_PORT"; then
        log "postgres: stopped; $PG_HOST:$PG_PORT is taken by another process ($(port_owner "$PG_PORT"))"
    else
        log "postgres: stopped"
    fi
}

postgres_urls() {
    local url
    for url in "${PG_DB_URLS[@]}"; do
        log "  $url"
    done
}
