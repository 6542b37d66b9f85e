#!/bin/sh
# The driver: the test passes when every step below holds.
#   1. the cluster elects a leader and takes a write;
#   2. the leader is partitioned away: the other two elect a new leader and keep taking writes,
#      while the old leader alone refuses them; after `heal` it catches up;
#   3. a follower is killed, the cluster takes a write without it, and the follower, started
#      again, rejoins with the data on its volume and catches up;
#   4. a slow link (100 ms each way) shows in the round trip a client sees.
set -eu

ETCDCTL_API=3
export ETCDCTL_API
all="n1:2379,n2:2379,n3:2379"

step() { echo "== $*"; }
ctl() { etcdctl --dial-timeout=2s --command-timeout=3s "$@"; }

# The name of the current leader as seen by the endpoints in $1.
leader() {
  ctl --endpoints="$1" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["leader"] == e["Status"]["header"]["member_id"]:
        print(e["Endpoint"].split(":")[0]); break'
}

# Retries a command for up to $1 seconds.
within() {
  limit=$1; shift
  end=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || { echo "not within ${limit}s: $*"; return 1; }
    sleep 0.2
  done
}

step "cluster up: nodes $PSY_NODES at $PSY_NODE_N1_ADDR $PSY_NODE_N2_ADDR $PSY_NODE_N3_ADDR"
within 30 ctl --endpoints="$all" endpoint health
has_leader() { [ -n "$(leader "$all")" ]; }
within 20 has_leader
old=$(leader "$all")
within 15 ctl --endpoints="$all" put k1 v1
followers=$(for n in n1 n2 n3; do [ "$n" = "$old" ] || printf '%s ' "$n"; done)
set -- $followers
f1=$1; f2=$2
echo "leader $old, followers $f1 $f2"

step "partition the leader $old away from $f1 and $f2"
psy fault partition "$old" / "$f1,$f2"
new_leader() { l=$(leader "$f1:2379,$f2:2379"); [ -n "$l" ] && [ "$l" != "$old" ]; }
within 15 new_leader
echo "new leader $(leader "$f1:2379,$f2:2379")"
within 15 ctl --endpoints="$f1:2379,$f2:2379" put k2 v2
if ctl --endpoints="$old:2379" --command-timeout=2s put k3 v3; then
  echo "the old leader $old took a write while cut off"; exit 1
fi
echo "the old leader refused the write, as it must"

step "heal: $old catches up"
psy fault heal
caught_up() { [ "$(ctl --endpoints="$old:2379" get k2 --print-value-only 2>/dev/null)" = v2 ]; }
within 15 caught_up

# A follower of the leader now in charge (after the partition it is one of $f1 $f2).
within 15 has_leader
now=$(leader "$all")
victim=$(for n in n1 n2 n3; do [ "$n" = "$now" ] || { echo "$n"; break; }; done)
others=$(for n in n1 n2 n3; do [ "$n" = "$victim" ] || printf '%s:2379,' "$n"; done)
others=${others%,}
step "kill follower $victim (leader: $now), write without it, start it again"
psy fault kill "$victim"
within 15 ctl --endpoints="$others" put k4 v4
psy fault start "$victim"
rejoined() {
  [ "$(ctl --endpoints="$victim:2379" get k1 --consistency=s --print-value-only 2>/dev/null)" = v1 ] &&
  [ "$(ctl --endpoints="$victim:2379" get k4 --consistency=s --print-value-only 2>/dev/null)" = v4 ]
}
within 20 rejoined
echo "$victim has k1 (from its volume) and k4 (caught up)"

step "a slow link to $f1 raises the latency its clients see"
rtt() {
  python3 - "$1" <<'PY'
import socket, sys, time
best = None
for _ in range(5):
    t = time.perf_counter()
    s = socket.create_connection((sys.argv[1], 2379), timeout=5)
    s.close()
    d = (time.perf_counter() - t) * 1000
    best = d if best is None else min(best, d)
print(round(best, 1))
PY
}
before=$(rtt "$f1")
psy fault link "$f1" --delay 100ms
after=$(rtt "$f1")
psy fault link "$f1" --clear
echo "TCP connect to $f1: ${before} ms before, ${after} ms with the slow link"
python3 -c "import sys; sys.exit(0 if float('$after') - float('$before') >= 80 else 1)" ||
  { echo "the delay did not show"; exit 1; }

step "done"
