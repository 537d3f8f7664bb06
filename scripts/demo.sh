#!/usr/bin/env bash
# The whole loop on one machine: a local MaintainX (the sandbox), the bridge,
# subscriptions registered through the real API calls, a day of plant life,
# and the events the bridge handled. Everything lives in a temporary folder
# and every process started here is stopped on the way out.
set -euo pipefail

BIN="${BIN:-.venv/bin}"
MX="$BIN/mxbridge"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mxbridge-demo.XXXXXX")"
PIDS=()

stop() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap stop EXIT INT TERM

free_port() {
    "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # URL, what
    for _ in $(seq 100); do
        if "$BIN/python" -c "import httpx, sys; httpx.get(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "demo: the $2 did not start; its log:" >&2
    cat "$WORK/$2.log" >&2
    exit 1
}

step() { printf '\n== %s\n' "$*"; }

SANDBOX_PORT="$(free_port)"
BRIDGE_PORT="$(free_port)"
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
export MAINTAINX_API_KEY="demo-key"
export MXBRIDGE_CONFIG="$WORK/mxbridge.toml"
unset MAINTAINX_WEBHOOK_SECRET MXBRIDGE_STORE_URL

cat >"$MXBRIDGE_CONFIG" <<TOML
app = "$PWD/scripts/demo_app.py:bridge"

[server]
port = $BRIDGE_PORT

[store]
url = "sqlite:///$WORK/mxbridge.db"

[worker]
poll_interval = 0.2

[logging]
format = "console"

[maintainx]
base_url = "$SANDBOX/v1"
public_url = "http://127.0.0.1:$BRIDGE_PORT/webhooks/maintainx"

[[maintainx.subscriptions]]
event = "workorder.created"
serialize = true

[[maintainx.subscriptions]]
event = "workorder.status_changed"

[[maintainx.subscriptions]]
event = "workorder.updated"

[[maintainx.subscriptions]]
event = "request.created"

[[maintainx.subscriptions]]
event = "request.status_changed"

[[maintainx.subscriptions]]
event = "asset.status_changed"
TOML

step "starting the MaintainX sandbox on $SANDBOX"
"$MX" sandbox --port "$SANDBOX_PORT" --api-key "$MAINTAINX_API_KEY" >"$WORK/sandbox.log" 2>&1 &
PIDS+=("$!")
wait_for "$SANDBOX/_sandbox/state" sandbox

step "starting the bridge on http://127.0.0.1:$BRIDGE_PORT"
"$MX" serve >"$WORK/bridge.log" 2>&1 &
PIDS+=("$!")
wait_for "http://127.0.0.1:$BRIDGE_PORT/healthz" bridge

step "mxbridge subscriptions sync   (the plan)"
"$MX" subscriptions sync
step "mxbridge subscriptions sync --apply   (POST /subscriptions, one per event type)"
"$MX" subscriptions sync --apply
step "mxbridge subscriptions sync --apply   (again: nothing to create)"
"$MX" subscriptions sync --apply

step "mxbridge sandbox scenario plant-day"
"$MX" sandbox scenario plant-day --url "$SANDBOX/v1" --api-key "$MAINTAINX_API_KEY"
"$BIN/python" -c "import httpx, sys; httpx.post(sys.argv[1], timeout=30)" "$SANDBOX/_sandbox/idle?timeout=25"
sleep 2   # let the worker run the last handlers

step "what the handlers said (bridge log)"
grep -E "handled|delivery rejected" "$WORK/bridge.log" | sed -e 's/^/  /' || true

step "mxbridge events list"
"$MX" events list

step "stopping the bridge (it records each subscription's last delivery)"
kill -TERM "${PIDS[1]}"
wait "${PIDS[1]}" || true

step "mxbridge subscriptions list   (refreshed from GET /subscriptions/{id})"
"$MX" subscriptions list

step "mxbridge subscriptions delete --all"
"$MX" subscriptions delete --all
