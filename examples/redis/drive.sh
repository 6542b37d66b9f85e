#!/bin/sh
# The driver: every write the replica acknowledged survives the primary's death.
set -eu

step() { echo "== $*"; }
r() { host=$1; shift; redis-cli -h "$host" "$@"; }

within() {
  limit=$1; shift
  end=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || { echo "not within ${limit}s: $*"; return 1; }
    sleep 0.1
  done
}

step "replica in sync with primary ($PSY_NODE_PRIMARY_ADDR -> $PSY_NODE_REPLICA_ADDR)"
linked() { r replica info replication | grep -q "master_link_status:up"; }
within 20 linked

step "write a counter, each increment acknowledged by the replica (WAIT 1)"
echo 0 > /tmp/acked
writer() {
  i=0
  while :; do
    i=$((i + 1))
    # Reading commands from stdin, redis-cli exits 0 even when it cannot connect: no answer
    # means the primary is gone.
    out=$(printf 'INCR counter\r\nWAIT 1 1000\r\n' | redis-cli -h primary 2>/dev/null) || break
    [ -n "$out" ] || break
    n=$(echo "$out" | sed -n 1p); w=$(echo "$out" | sed -n 2p)
    [ "$w" = 1 ] && echo "$n" > /tmp/acked
  done
}
writer &
sleep 1.5
step "kill the primary mid-write"
psy fault kill primary
wait || true
acked=$(cat /tmp/acked)
echo "last acknowledged value: $acked"

step "the replica kept every acknowledged write"
got=$(r replica get counter)
echo "replica has counter = $got"
[ "$got" -ge "$acked" ] || { echo "lost acknowledged writes: $got < $acked"; exit 1; }

step "promote the replica; it takes writes"
r replica replicaof no one
r replica incr counter
step "the old primary comes back with its volume, as a replica of the new primary"
psy fault start primary
r primary replicaof replica 6379
caught_up() { [ "$(r primary get counter)" = "$(r replica get counter)" ]; }
within 20 caught_up
echo "old primary caught up: counter = $(r primary get counter)"
step "done"
