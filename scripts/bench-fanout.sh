#!/usr/bin/env bash
# Measures mercurectl's hub against the minimal baseline broadcaster
# ('mercurectl bench baseline') in the same run on this machine: the server
# runs with GOMAXPROCS=1 on one core, the load generator on the other. The
# hub runs twice: with idle streams parked (the default on Linux) and with
# --park-idle=false (a goroutine per stream). For each server it prints the
# load generator's result and the server's CPU time while publishing (from
# the moment every subscription is open until the last delivery arrived),
# per 1,000 deliveries; then the ratios hub/baseline (below 1.0: the hub
# spends less CPU than the minimal broadcaster for the same deliveries) and
# parked/goroutine per stream, for CPU per delivery and delivery rate.
#
# usage: scripts/bench-fanout.sh [mercurectl bench flags...]
#   default: --subscribers 19500 --publishers 256 --duration 10s
#   broadcast: --subscribers 10000 --topics 1 --publishers 4 --updates 300
# Environment: MERCURECTL (a binary; default: built into a temp dir),
# TRANSPORT (the hub's --transport, default memory), HUB_CORE (0), LOAD_CORE (1).
# Needs: go, taskset, jq, bc; an open-file limit above the subscriber count.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
bin=${MERCURECTL:-}
if [ -z "$bin" ]; then
  CGO_ENABLED=0 go build -o "$tmp/mercurectl" ./cmd/mercurectl
  bin="$tmp/mercurectl"
fi
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
[ "$#" -gt 0 ] || set -- --subscribers 19500 --publishers 256 --duration 10s
bench_args=("$@")

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

measure() { # name path server-args...
  local name=$1 path=$2; shift 2
  rm -f "$tmp/addr"
  GOMAXPROCS=1 taskset -c "${HUB_CORE:-0}" "$bin" "$@" --addr 127.0.0.1:0 --addr-file "$tmp/addr" 2>"$tmp/$name.log" &
  local pid=$!
  for _ in $(seq 200); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
  [ -s "$tmp/addr" ] || { echo "$name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  taskset -c "${LOAD_CORE:-1}" "$bin" bench --hub "http://$(cat "$tmp/addr")$path" --jwt-key "$key" -o json "${bench_args[@]}" \
    >"$tmp/$name.json" 2>"$tmp/$name.progress" &
  local lpid=$!
  until grep -q publishing "$tmp/$name.progress" 2>/dev/null; do kill -0 $lpid 2>/dev/null || break; sleep 0.02; done
  local t0; t0=$(ticks $pid)
  until grep -q "deliveries done" "$tmp/$name.progress" 2>/dev/null; do kill -0 $lpid 2>/dev/null || break; sleep 0.02; done
  local t1; t1=$(ticks $pid)
  local rss; rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  wait $lpid || true
  kill -INT $pid; wait $pid 2>/dev/null || true
  [ -s "$tmp/$name.json" ] || { echo "$name: bench failed:" >&2; cat "$tmp/$name.progress" >&2; exit 1; }
  local delivered; delivered=$(jq .delivered "$tmp/$name.json")
  local per; per=$(echo "scale=4; ($t1 - $t0) * 10000 / $delivered" | bc)
  echo "$name: $(cat "$tmp/$name.json")"
  echo "$name: CPU from first publish to last delivery $(( (t1 - t0) * 10 )) ms, $per ms per 1000 deliveries; RSS with all subscriptions open ${rss} kB"
  echo "$per" >"$tmp/$name.per"
  jq .deliveries_per_second "$tmp/$name.json" >"$tmp/$name.rate"
}

ratio() { echo "scale=3; $(cat "$tmp/$1") / $(cat "$tmp/$2")" | bc; }

measure hub /.well-known/mercure serve --jwt-key "$key" --transport "${TRANSPORT:-memory}" --log-level error
measure hub-goroutines /.well-known/mercure serve --jwt-key "$key" --transport "${TRANSPORT:-memory}" --log-level error --park-idle=false
measure baseline / bench baseline
echo "ratio hub/baseline CPU per delivery: $(ratio hub.per baseline.per)"
echo "ratio parked/goroutine-per-stream CPU per delivery: $(ratio hub.per hub-goroutines.per), delivery rate: $(ratio hub.rate hub-goroutines.rate)"
