# shellcheck shell=bash
# shellcheck disable=SC2153  # KAFKA_HOST etc. are set by load_stack (common.sh)
# Kafka component of infra.sh. Sourced, never executed.
#
# Apache Kafka (version pinned in kafka/pom.xml), single node in KRaft mode
# (combined broker + controller). The runtime jars come from Maven Central via
# `mvn dependency:copy-dependencies` and are cached in $MC_LOCAL_DIR/kafka/libs,
# keyed by the pom's sha256. Topics come from stack.json (create_topics.py).

KAFKA_POM=$INFRA_DIR/kafka/pom.xml
KAFKA_DIR=$MC_LOCAL_DIR/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_LOGS=$KAFKA_DIR/logs
KAFKA_PROPS=$KAFKA_DIR/server.properties
KAFKA_LOG4J=$KAFKA_DIR/log4j.properties
KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
KAFKA_CLUSTER_ID_FILE=$KAFKA_DIR/cluster.id
KAFKA_OUT=$LOG_DIR/kafka.log
KAFKA_START_TIMEOUT=${MC_KAFKA_START_TIMEOUT:-90}
KAFKA_JAVA_OPTS=${MC_KAFKA_JAVA_OPTS:--Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError}
# A second client listener for fault injection (tests/chaos): clients that bootstrap
# on it are told to reconnect to the ADVERTISED port, where the chaos proxy relays to
# this listener. Nothing listens on the advertised port unless a proxy runs.
KAFKA_CHAOS_PORT=${MC_KAFKA_CHAOS_PORT:-9094}
KAFKA_CHAOS_ADVERTISED_PORT=${MC_KAFKA_CHAOS_ADVERTISED_PORT:-19094}

kafka_pid() {
    local pid
    pid=$(read_pidfile "$KAFKA_PIDFILE")
    if [ -n "$pid" ] && pid_matches "$pid" "kafka.Kafka $KAFKA_PROPS"; then printf '%s\n' "$pid"; fi
}

kafka_ensure_java() {
    command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 && return 0
    apt_install openjdk-17-jre-headless maven
}

# Resolves the broker's runtime class path into $KAFKA_LIBS unless already cached.
kafka_ensure_libs() {
    local pom_sha cached="" tmp=$KAFKA_LIBS.tmp mvn_log=$LOG_DIR/kafka-install.log
    pom_sha=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
    [ -f "$KAFKA_LIBS/.complete" ] && read -r cached <"$KAFKA_LIBS/.complete"
    [ "$cached" = "$pom_sha" ] && return 0
    kafka_ensure_java
    log "kafka: resolving the broker's jars from Maven Central into $KAFKA_LIBS (log: $mvn_log)"
    rm -rf "$tmp"
    local -a mvn_args=(-B -q -Dstyle.color=never -f "$KAFKA_POM")
    # Maven's own download cache: ~/.m2/repository unless MC_MAVEN_REPO says otherwise.
    [ -z "${MC_MAVEN_REPO:-}" ] || mvn_args+=("-Dmaven.repo.local=$MC_MAVEN_REPO")
    if ! mvn "${mvn_args[@]}" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >>"$mvn_log" 2>&1; then
        show_log "$mvn_log"
        die "kafka: resolving the Kafka jars with Maven failed (see $mvn_log)"
    fi
    printf '%s\n' "$pom_sha" >"$tmp/.complete"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
}

kafka_write_config() {
    mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
    cat >"$KAFKA_PROPS" <<EOF
# Written by infrastructure/local/kafka.sh on every start; edit stack.json instead.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT,CHAOS://$KAFKA_HOST:$KAFKA_CHAOS_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CHAOS://$KAFKA_HOST:$KAFKA_CHAOS_ADVERTISED_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CHAOS:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=3
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
    cat >"$KAFKA_LOG4J" <<EOF
# Written by infrastructure/local/kafka.sh on every start.
log4j.rootLogger=INFO, file, stderr
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$KAFKA_LOGS/server.log
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.Threshold=ERROR
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients.NetworkClient=WARN
EOF
}

# A KRaft cluster id: 16 random bytes, url-safe base64 without padding, not
# starting with '-' (what `kafka-storage.sh random-uuid` prints).
kafka_new_cluster_id() {
    local py
    py=$(system_python) || die "python3 is required"
    "$py" -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

kafka_format_storage() {
    local cluster_id=""
    [ -f "$KAFKA_DATA/meta.properties" ] && return 0
    [ -f "$KAFKA_CLUSTER_ID_FILE" ] && read -r cluster_id <"$KAFKA_CLUSTER_ID_FILE"
    if [ -z "$cluster_id" ]; then
        cluster_id=$(kafka_new_cluster_id)
        printf '%s\n' "$cluster_id" >"$KAFKA_CLUSTER_ID_FILE"
    fi
    log "kafka: formatting storage in $KAFKA_DATA (cluster id $cluster_id)"
    # shellcheck disable=SC2086  # KAFKA_JAVA_OPTS is a list of JVM flags
    if ! java $KAFKA_JAVA_OPTS -Dlog4j.configuration="file:$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" --ignore-formatted \
        >>"$KAFKA_OUT" 2>&1; then
        show_log "$KAFKA_OUT"
        die "kafka: formatting the storage directory failed (see $KAFKA_OUT)"
    fi
}

kafka_port_or_exit() {
    port_open "$KAFKA_HOST" "$KAFKA_PORT" || ! pid_alive "$1"
}

kafka_start() {
    local pid
    kafka_ensure_libs
    command -v java >/dev/null 2>&1 || kafka_ensure_java
    require_port_free kafka "$KAFKA_HOST" "$KAFKA_PORT"
    require_port_free "kafka controller" "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"
    require_port_free "kafka chaos listener" "$KAFKA_HOST" "$KAFKA_CHAOS_PORT"
    kafka_write_config
    kafka_format_storage
    log "kafka: starting Kafka $(kafka_version) on $KAFKA_HOST:$KAFKA_PORT (logs: $KAFKA_OUT, $KAFKA_LOGS/server.log)"
    printf '%s\n' "===== $(date -Is) starting kafka =====" >>"$KAFKA_OUT"
    # No job control in scripts, so the child is not a group leader and setsid
    # exec()s java in place: $! is the JVM's pid.
    # shellcheck disable=SC2086  # KAFKA_JAVA_OPTS is a list of JVM flags
    nohup setsid java $KAFKA_JAVA_OPTS -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_LOGS" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" >>"$KAFKA_OUT" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$KAFKA_PIDFILE"
    if ! wait_until "$KAFKA_START_TIMEOUT" kafka_port_or_exit "$pid" || ! pid_alive "$pid"; then
        show_log "$KAFKA_OUT" "$KAFKA_LOGS/server.log"
        rm -f "$KAFKA_PIDFILE"
        if pid_alive "$pid"; then
            stop_pid "$pid" 10 kafka
            die "kafka: broker did not start listening on $KAFKA_HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (see $KAFKA_OUT)"
        fi
        die "kafka: broker exited during startup (see $KAFKA_OUT and $KAFKA_LOGS/server.log)"
    fi
    log "kafka: started (pid $pid)"
}

kafka_version() {
    local jar
    for jar in "$KAFKA_LIBS"/kafka-clients-*.jar; do
        jar=${jar##*/kafka-clients-}
        printf '%s\n' "${jar%.jar}"
        return 0
    done
}

# Waits until the broker answers metadata requests, then creates/extends topics.
kafka_topics() {
    if [ ! -x "$MC_PYTHON" ]; then
        die "kafka: broker is up but topics were NOT created: the project venv python ($MC_PYTHON) is missing; run 'uv sync' and then 'infra.sh up kafka' (or set MC_PYTHON)"
    fi
    if ! "$MC_PYTHON" "$INFRA_DIR/create_topics.py" --stack "$STACK_JSON" --timeout "$KAFKA_START_TIMEOUT"; then
        show_log "$KAFKA_LOGS/server.log"
        die "kafka: creating topics from $STACK_JSON failed"
    fi
}

kafka_up() {
    local pid
    pid=$(kafka_pid)
    if [ -n "$pid" ]; then
        log "kafka: already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
    else
        kafka_start
    fi
    kafka_topics
}

kafka_down() {
    local pid
    pid=$(kafka_pid)
    if [ -z "$pid" ]; then
        log "kafka: not running"
        rm -f "$KAFKA_PIDFILE"
        return 0
    fi
    log "kafka: stopping (pid $pid)"
    stop_pid "$pid" 60 kafka
    rm -f "$KAFKA_PIDFILE"
    log "kafka: stopped"
}

kafka_status() {
    local pid
    pid=$(kafka_pid)
    if [ -n "$pid" ]; then
        if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
            log "kafka: running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT$(kafka_chaos_status))"
        else
            log "kafka: process running (pid $pid) but $KAFKA_HOST:$KAFKA_PORT does not answer"
        fi
    elif port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        log "kafka: stopped; $KAFKA_HOST:$KAFKA_PORT is taken by another process ($(port_owner "$KAFKA_PORT"))"
    else
        log "kafka: stopped"
    fi
}

# ", chaos listener :9094 (advertised :19094)" when this broker has it (a broker
# started before the listener existed gets it at its next restart).
kafka_chaos_status() {
    if port_open "$KAFKA_HOST" "$KAFKA_CHAOS_PORT"; then
        printf ', chaos listener :%s (advertised :%s)' "$KAFKA_CHAOS_PORT" "$KAFKA_CHAOS_ADVERTISED_PORT"
    fi
}

kafka_urls() {
    log "  kafka bootstrap servers: $KAFKA_HOST:$KAFKA_PORT ($KAFKA_TOPIC_COUNT topics)"
}
