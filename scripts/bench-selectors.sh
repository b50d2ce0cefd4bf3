#!/usr/bin/env bash
# Compares selector kinds on mercurectl's hub in the same run: for each
# --selector kind (exact, template, urlpattern) it starts `mercurectl serve`
# with GOMAXPROCS=1 on one core and `mercurectl bench` on the other, and
# prints deliveries per second and the hub's CPU time per 1,000 deliveries,
# then each kind's ratios to the exact-topic run.
#
# usage: scripts/bench-selectors.sh [mercurectl bench flags...]
#   default: --subscribers 19500 --publishers 256 --duration 5s (selective)
#   broadcast: --subscribers 10000 --topics 1 --publishers 4 --updates 300
# Environment: MERCURECTL (a binary; default: built into a temp dir),
# KINDS (default "exact template urlpattern"), SERVE_ARGS (more serve flags),
# HUB_CORE (0), LOAD_CORE (1).
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
[ "$#" -gt 0 ] || set -- --subscribers 19500 --publishers 256 --duration 5s
bench_args=("$@")

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

for kind in ${KINDS:-exact template urlpattern}; do
  rm -f "$tmp/addr"
  GOMAXPROCS=1 taskset -c "${HUB_CORE:-0}" "$bin" serve --jwt-key "$key" --transport memory --log-level error --max-subscribers 0 ${SERVE_ARGS:-} \
    --addr 127.0.0.1:0 --addr-file "$tmp/addr" 2>"$tmp/$kind.log" &
  pid=$!
  for _ in $(seq 200); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
  [ -s "$tmp/addr" ] || { echo "serve did not start:" >&2; cat "$tmp/$kind.log" >&2; exit 1; }
  taskset -c "${LOAD_CORE:-1}" "$bin" bench --hub "http://$(cat "$tmp/addr")" --jwt-key "$key" --json --selector "$kind" "${bench_args[@]}" \
    >"$tmp/$kind.json" 2>"$tmp/$kind.progress" &
  lpid=$!
  until grep -q publishing "$tmp/$kind.progress" 2>/dev/null; do kill -0 $lpid 2>/dev/null || break; sleep 0.02; done
  t0=$(ticks $pid)
  until grep -q "deliveries done" "$tmp/$kind.progress" 2>/dev/null; do kill -0 $lpid 2>/dev/null || break; sleep 0.02; done
  t1=$(ticks $pid)
  wait $lpid || true
  kill -INT $pid; wait $pid 2>/dev/null || true
  [ -s "$tmp/$kind.json" ] || { echo "$kind: bench failed:" >&2; cat "$tmp/$kind.progress" >&2; exit 1; }
  delivered=$(jq .delivered "$tmp/$kind.json")
  rate=$(jq .deliveries_per_second "$tmp/$kind.json")
  per=$(echo "scale=4; ($t1 - $t0) * 10000 / $delivered" | bc)
  echo "$kind: $(cat "$tmp/$kind.json")"
  echo "$kind: $rate deliveries/s; hub CPU $(( (t1 - t0) * 10 )) ms, $per ms per 1000 deliveries"
  echo "$rate" >"$tmp/$kind.rate"
  echo "$per" >"$tmp/$kind.per"
done
if [ -s "$tmp/exact.rate" ]; then
  for kind in ${KINDS:-exact template urlpattern}; do
    [ "$kind" = exact ] && continue
    echo "$kind/exact: throughput $(echo "scale=3; $(cat "$tmp/$kind.rate") / $(cat "$tmp/exact.rate")" | bc)," \
      "CPU per delivery $(echo "scale=3; $(cat "$tmp/$kind.per") / $(cat "$tmp/exact.per")" | bc)"
  done
fi
