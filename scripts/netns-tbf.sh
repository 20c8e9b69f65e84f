#!/usr/bin/env bash
# Edge and device in two network namespaces joined by a veth pair, the device->edge direction
# rate-limited by `tc tbf` (kernel shaping instead of the in-process shaper). Needs root (or run
# under `unshare -rn` for a private, unprivileged variant) and a built `target/release/tandem`.
#
#   scripts/netns-tbf.sh RATE [extra `tandem device` args...]
#   SERIES=artifacts/series scripts/netns-tbf.sh 1mbit --series artifacts/series --plan 0:input:f32-lz4 --duration 8s
#
# Only namespace-local addresses (10.77.0.1/2) are used. `netem` (delay) is not available on this
# kernel ("Specified qdisc kind is unknown"); tbf's `latency` only bounds queueing, so one-way
# delay is not emulated here — use the in-process shaper (`[device.link] trace`) for that.
set -euo pipefail
RATE=${1:?usage: $0 RATE [tandem device args...]}; shift
BIN=${TANDEM:-target/release/tandem}
EDGE_NS=tandem-edge; DEV_NS=tandem-dev
cleanup() { ip netns del "$EDGE_NS" 2>/dev/null || true; ip netns del "$DEV_NS" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$EDGE_NS"; ip netns add "$DEV_NS"
ip link add veth-dev netns "$DEV_NS" type veth peer name veth-edge netns "$EDGE_NS"
ip -n "$DEV_NS" addr add 10.77.0.2/24 dev veth-dev; ip -n "$EDGE_NS" addr add 10.77.0.1/24 dev veth-edge
for ns in "$DEV_NS" "$EDGE_NS"; do ip -n "$ns" link set lo up; done
ip -n "$DEV_NS" link set veth-dev mtu 576 up; ip -n "$EDGE_NS" link set veth-edge mtu 576 up
# Device -> edge: token bucket at RATE, one (small) MTU of burst, at most 200 ms of queue. tbf
# cannot pace inside a packet and its burst must hold one whole packet, so with the usual 1500-byte
# MTU a 1.5 kB frame would leave at line rate after every idle gap: the 576-byte MTU makes such a
# frame three packets, of which only the first rides the burst. Checked 2026-11-26: 1,501-byte
# frames at 1mbit took 9.3 ms to cross (12 ms of serialisation less one 600-byte burst), against
# 1.9 ms with MTU 1500 and burst 1600.
ip netns exec "$DEV_NS" tc qdisc add dev veth-dev root tbf rate "$RATE" burst 600 latency 200ms
ip netns exec "$EDGE_NS" "$BIN" edge --listen 10.77.0.1:7878 --series "${SERIES:-artifacts/series}" &
EDGE_PID=$!
sleep 1  # the edge binds; the device retries with backoff anyway
ip netns exec "$DEV_NS" "$BIN" device --edge 10.77.0.1:7878 "$@"
kill -TERM "$EDGE_PID" 2>/dev/null || true
wait "$EDGE_PID" 2>/dev/null || true
