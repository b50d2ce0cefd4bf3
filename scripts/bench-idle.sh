#!/usr/bin/env bash
# Measures the memory an idle subscription costs: for each server (the hub
# with idle streams parked, the hub with --park-idle=false, and the minimal
# baseline broadcaster), it opens N idle subscriptions from a separate
# 'mercurectl bench --hold' process, waits for the runtime's periodic forced
# GC (at most two minutes after the last one) and the scavenger, then prints
# the RSS growth per subscription, and for the hubs the heap and goroutine
# stacks per subscription from the metrics endpoint. The server runs with
# GOMAXPROCS=1 on one core, the load generator on the other.
#
# usage: scripts/bench-idle.sh [N]        (default 10000)
# Environment: MERCURECTL (a binary; default: built into a temp dir),
# SERVERS (default "parked goroutines baseline"), SETTLE (seconds to wait
# after the forced GC, default 15), HUB_CORE (0), LOAD_CORE (1).
# Needs: go, taskset, curl, bc; an open-file limit above N in both processes.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
bin=${MERCURECTL:-}
if [ -z "$bin" ]; then
  CGO_ENABLED=0 go build -o "$tmp/mercurectl" ./cmd/mercurectl
  bin="$tmp/mercurectl"
fi
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
metric() { curl -s "http://$(cat "$tmp/maddr")/metrics" | awk -v m="$1" '$1==m{printf "%d\n", $2}'; }

measure() { # name path server-args...
  local name=$1 path=$2; shift 2
  rm -f "$tmp/addr" "$tmp/maddr"
  local margs=()
  [ "$name" = baseline ] || margs=(--metrics-addr 127.0.0.1:0)
  GOMAXPROCS=1 taskset -c "${HUB_CORE:-0}" "$bin" "$@" --addr 127.0.0.1:0 --addr-file "$tmp/addr" "${margs[@]}" 2>"$tmp/$name.log" &
  local pid=$!
  for _ in $(seq 200); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
  [ -s "$tmp/addr" ] || { echo "$name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  if [ "$name" != baseline ]; then
    grep -o '"metrics":"http://[^/]*' "$tmp/$name.log" | sed 's|.*http://||' >"$tmp/maddr"
  fi
  sleep 1
  local rss0 heap0=0 stack0=0; rss0=$(rss $pid)
  if [ -s "$tmp/maddr" ]; then heap0=$(metric go_memstats_heap_inuse_bytes); stack0=$(metric go_memstats_stack_inuse_bytes); fi
  taskset -c "${LOAD_CORE:-1}" "$bin" bench --hub "http://$(cat "$tmp/addr")$path" --jwt-key "$key" \
    --subscribers "$n" --duration 1ms --drain 1s --hold 1h >/dev/null 2>"$tmp/$name.progress" &
  local lpid=$!
  until grep -q holding "$tmp/$name.progress" 2>/dev/null; do
    kill -0 $lpid 2>/dev/null || { echo "$name: bench failed:" >&2; cat "$tmp/$name.progress" >&2; exit 1; }
    sleep 0.2
  done
  local t0; t0=$(date +%s)
  if [ -s "$tmp/maddr" ]; then
    # Wait for a GC that started after every subscription was open.
    until [ "$(metric go_memstats_last_gc_time_seconds)" -gt "$t0" ]; do sleep 2; done
  else
    sleep 125
  fi
  sleep "${SETTLE:-15}"
  local rss1 heap1=0 stack1=0 gor=0 parked=0; rss1=$(rss $pid)
  if [ -s "$tmp/maddr" ]; then
    heap1=$(metric go_memstats_heap_inuse_bytes); stack1=$(metric go_memstats_stack_inuse_bytes)
    gor=$(metric go_goroutines); parked=$(metric mercure_subscribers_parked)
  fi
  kill -INT $lpid; wait $lpid 2>/dev/null || true
  kill -INT $pid; wait $pid 2>/dev/null || true
  per() { echo "scale=2; $1 * 1024 / $n / 1024" | bc; }
  echo "$name: $n idle subscriptions: RSS +$(( rss1 - rss0 )) kB = $(per $(( rss1 - rss0 ))) KiB each" \
    "(heap $(per $(( (heap1 - heap0) / 1024 ))) KiB, stacks $(per $(( (stack1 - stack0) / 1024 ))) KiB each;" \
    "$gor goroutines, $parked parked; RSS $rss1 kB)"
}

for s in ${SERVERS:-parked goroutines baseline}; do
  case $s in
    parked) measure parked /.well-known/mercure serve --jwt-key "$key" --transport memory --log-level info --log-format json ;;
    goroutines) measure goroutines /.well-known/mercure serve --jwt-key "$key" --transport memory --log-level info --log-format json --park-idle=false ;;
    baseline) measure baseline / bench baseline ;;
  esac
done
