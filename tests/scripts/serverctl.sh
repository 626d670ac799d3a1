#!/usr/bin/env bash
# Controls one test server living in SERVICE_DIR (made by servers.sh), keeping its ports and data dir.
# Usage: serverctl.sh SERVICE_DIR start|stop|kill|restart|status
#   start   launch (no-op when running) and wait until ready_url answers
#   stop    SIGTERM and wait for exit (graceful; simulates an outage)
#   kill    SIGKILL and wait for exit (simulates a crash)
# SERVICE_DIR holds: run (bash script that execs the server), ready_url, pid, server.log.
set -euo pipefail

dir=${1:?usage: serverctl.sh SERVICE_DIR start|stop|kill|restart|status}
action=${2:?usage: serverctl.sh SERVICE_DIR start|stop|kill|restart|status}
name=$(basename "$dir")
ready_timeout=${MARKETPRISM_SERVER_READY_TIMEOUT:-90}

running_pid() {
    local pid
    [[ -s $dir/pid ]] || return 1
    pid=$(cat "$dir/pid")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

wait_ready() {
    local url deadline
    url=$(cat "$dir/ready_url")
    deadline=$((SECONDS + ready_timeout))
    while ((SECONDS < deadline)); do
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        if ! running_pid >/dev/null; then
            echo "$name exited during startup; last log lines:" >&2
            tail -n 30 "$dir/server.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "$name not ready at $url after ${ready_timeout}s; last log lines:" >&2
    tail -n 30 "$dir/server.log" >&2 || true
    return 1
}

start() {
    if running_pid >/dev/null; then
        wait_ready
        return
    fi
    rm -f "$dir/pid"
    echo "---- start $(date -u +%FT%TZ) ----" >>"$dir/server.log"
    # Double fork: the server is not a job of the caller's shell; `run` writes its own pid then execs.
    (bash "$dir/run" >>"$dir/server.log" 2>&1 </dev/null &)
    local waited=0
    until [[ -s $dir/pid ]] || ((waited++ > 100)); do sleep 0.05; done
    wait_ready
}

stop_with() {
    local signal=$1 pid deadline
    pid=$(running_pid) || return 0
    kill "-$signal" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "$name (pid $pid) ignored SIG$signal for 60s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
        fi
        sleep 0.05
    done
    rm -f "$dir/pid"
    echo "---- $signal $(date -u +%FT%TZ) ----" >>"$dir/server.log"
}

case $action in
start) start ;;
stop) stop_with TERM ;;
kill) stop_with KILL ;;
restart)
    stop_with TERM
    start
    ;;
status)
    if pid=$(running_pid); then echo "$name running (pid $pid)"; else
        echo "$name stopped"
        exit 3
    fi
    ;;
*)
    echo "unknown action $action (start|stop|kill|restart|status)" >&2
    exit 2
    ;;
esac
