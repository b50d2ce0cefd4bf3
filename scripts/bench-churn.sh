#!/usr/bin/env bash
# Connection churn: 'mercurectl bench --churn RATE' connects and disconnects
# RATE subscriptions per second for a while against the hub (idle streams
# parked, then --park-idle=false), running with GOMAXPROCS=1 on one core.
# Prints the hub's goroutines, open descriptors, poller registrations and
# open subscriptions (from --metrics-addr) before and after: with no leak,
# "after" equals "before".
#
# usage: scripts/bench-churn.sh [RATE [DURATION]]   (default 1000 60s)
# Environment: MERCURECTL (a binary; default: built into a temp dir),
# HUB_CORE (0), LOAD_CORE (1). Needs: go, taskset, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1000} duration=${2:-60s}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
bin=${MERCURECTL:-}
if [ -z "$bin" ]; then
  CGO_ENABLED=0 go build -o "$tmp/mercurectl" ./cmd/mercurectl
  bin="$tmp/mercurectl"
fi
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

sample() {
  curl -s "http://$(cat "$tmp/maddr")/metrics" | awk '
    $1=="go_goroutines"{g=$2} $1=="process_open_fds"{f=$2}
    $1=="mercure_poller_registrations"{r=$2} $1=="mercure_subscribers_connected"{s=$2}
    END{printf "goroutines %d, descriptors %d, poller registrations %d, subscriptions %d", g, f, r, s}'
}

measure() { # name server-args...
  local name=$1; shift
  rm -f "$tmp/addr"
  GOMAXPROCS=1 taskset -c "${HUB_CORE:-0}" "$bin" serve --jwt-key "$key" --transport memory --log-format json \
    --addr 127.0.0.1:0 --addr-file "$tmp/addr" --metrics-addr 127.0.0.1:0 "$@" 2>"$tmp/$name.log" &
  local pid=$!
  for _ in $(seq 200); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
  [ -s "$tmp/addr" ] || { echo "$name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  grep -o '"metrics":"http://[^/]*' "$tmp/$name.log" | sed 's|.*http://||' >"$tmp/maddr"
  # One warm-up cycle, so that the poller and the pools exist before.
  taskset -c "${LOAD_CORE:-1}" "$bin" bench --hub "http://$(cat "$tmp/addr")" --jwt-key "$key" \
    --subscribers 1 --churn 10 --duration 200ms >/dev/null
  sleep 2
  echo "$name before: $(sample)"
  taskset -c "${LOAD_CORE:-1}" "$bin" bench --hub "http://$(cat "$tmp/addr")" --jwt-key "$key" \
    --subscribers 0 --churn "$rate" --duration "$duration" | tr '\n' ' ' | sed "s/^/$name: /"; echo
  sleep 5
  echo "$name after:  $(sample)"
  kill -INT $pid; wait $pid 2>/dev/null || true
}

measure parked
measure goroutines --park-idle=false
