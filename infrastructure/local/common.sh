# shellcheck shell=bash
# Shared helpers for infra.sh. Sourced, never executed.
#
# Everything this tooling writes (binaries cache, data, logs, pid files) lives
# under $MC_LOCAL_DIR, which defaults to <repo>/.local.

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$INFRA_DIR/../.." && pwd -P)
STACK_JSON=${MC_STACK_JSON:-$INFRA_DIR/stack.json}
MC_LOCAL_DIR=${MC_LOCAL_DIR:-$REPO_ROOT/.local}
# The project venv's interpreter (aiokafka); only needed for Kafka topics.
MC_PYTHON=${MC_PYTHON:-$REPO_ROOT/.venv/bin/python}

log() { printf '[infra] %s\n' "$*"; }
warn() { printf '[infra] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[infra] ERROR: %s\n' "$*" >&2
    exit 1
}

# A stdlib-only interpreter for reading stack.json (works before the venv exists).
system_python() {
    local candidate
    for candidate in "${MC_SYSTEM_PYTHON:-}" python3 /usr/bin/python3 "$MC_PYTHON"; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

prepare_local_dir() {
    mkdir -p "$MC_LOCAL_DIR/logs" || die "cannot create $MC_LOCAL_DIR"
    MC_LOCAL_DIR=$(cd "$MC_LOCAL_DIR" && pwd -P)
    LOG_DIR=$MC_LOCAL_DIR/logs
}

# Reads stack.json into shell variables. Names are validated here so that they
# can be used verbatim as SQL identifiers and file names later on.
load_stack() {
    [ -f "$STACK_JSON" ] || die "stack description not found: $STACK_JSON"
    local py vars
    py=$(system_python) || die "python3 is required to read $STACK_JSON (apt-get install python3)"
    vars=$("$py" - "$STACK_JSON" <<'PY'
import json, re, shlex, sys
from urllib.parse import quote

with open(sys.argv[1], encoding="utf-8") as fh:
    stack = json.load(fh)
ident = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
topic_re = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

def emit(name, value):
    print(f"{name}={shlex.quote(str(value))}")

def emit_array(name, values):
    print(f"{name}=(" + " ".join(shlex.quote(str(v)) for v in values) + ")")

def port(value, what):
    value = int(value)
    if not 0 < value < 65536:
        sys.exit(f"invalid {what} port {value}")
    return value

pg, redis, kafka = stack["postgres"], stack["redis"], stack["kafka"]
emit("PG_HOST", pg["host"])
emit("PG_PORT", port(pg["port"], "postgres"))
names, users, passwords, urls = [], [], [], []
for db in pg["databases"]:
    for key in ("name", "user"):
        if not ident.match(db[key]):
            sys.exit(f"postgres {key} {db[key]!r} is not a plain lower-case SQL identifier")
    names.append(db["name"])
    users.append(db["user"])
    passwords.append(db["password"])
    urls.append(
        f"postgresql://{quote(db['user'], safe='')}:{quote(db['password'], safe='')}"
        f"@{pg['host']}:{pg['port']}/{db['name']}"
    )
emit_array("PG_DB_NAMES", names)
emit_array("PG_DB_USERS", users)
emit_array("PG_DB_PASSWORDS", passwords)
emit_array("PG_DB_URLS", urls)
emit("REDIS_HOST", redis["host"])
emit("REDIS_PORT", port(redis["port"], "redis"))
emit("KAFKA_HOST", kafka["host"])
emit("KAFKA_PORT", port(kafka["port"], "kafka"))
emit("KAFKA_CONTROLLER_PORT", port(kafka["controller_port"], "kafka controller"))
for topic in kafka.get("topics", []):
    if not topic_re.match(topic["name"]):
        sys.exit(f"invalid kafka topic name {topic['name']!r}")
emit("KAFKA_TOPIC_COUNT", len(kafka.get("topics", [])))
PY
) || die "cannot read $STACK_JSON"
    eval "$vars"
}

# True when something accepts TCP connections on host:port.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Human-readable description of whoever listens on a port (best effort).
port_owner() {
    local line=""
    if command -v ss >/dev/null 2>&1; then
        line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n1 | tr -s ' ')
    fi
    printf '%s\n' "${line:-unknown process}"
}

# Fails with a clear message if host:port is taken (called only when the
# component is known not to be running from our own data directory).
require_port_free() {
    local component=$1 host=$2 port=$3
    if port_open "$host" "$port"; then
        die "$component: $host:$port is already in use by a process that is not ours ($(port_owner "$port")); stop it or change the port in stack.json"
    fi
}

# True when PID is a live process (zombies, which PID 1 may be slow to reap
# here, count as gone).
pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# pid_matches PID SUBSTRING: the process is alive and its command line contains SUBSTRING.
pid_matches() {
    pid_alive "$1" || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$2"* ]]
}

read_pidfile() {
    local pid=""
    [ -f "$1" ] && read -r pid <"$1" 2>/dev/null
    if [[ $pid =~ ^[0-9]+$ ]]; then printf '%s\n' "$pid"; fi
}

# wait_until TIMEOUT_SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
wait_until() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

pid_gone() { ! pid_alive "$1"; }

# stop_pid PID TIMEOUT LABEL: SIGTERM, wait, then SIGKILL.
stop_pid() {
    local pid=$1 timeout=$2 label=$3
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "$timeout" pid_gone "$pid"; then
        warn "$label (pid $pid) did not stop within ${timeout}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_until 10 pid_gone "$pid" || die "$label (pid $pid) survived SIGKILL"
    fi
}

# show_log FILE...: last 30 lines of each existing file, to stderr.
show_log() {
    local file
    for file in "$@"; do
        [ -s "$file" ] || continue
        printf '%s\n' "----- last 30 lines of $file -----" >&2
        tail -n 30 "$file" >&2
        printf '%s\n' "----- end of $file -----" >&2
    done
}

APT_UPDATED=0
# apt_install PACKAGE...: installs Debian packages (root, or via sudo).
apt_install() {
    local -a sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing packages ($*) and not root: install them with apt-get install $*"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and apt-get is not available; install them by hand"
    local apt_log=$LOG_DIR/apt.log
    log "installing Debian packages: $* (log: $apt_log)"
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 ||
            { show_log "$apt_log"; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$apt_log" 2>&1 ||
        { show_log "$apt_log"; die "apt-get install $* failed"; }
}
