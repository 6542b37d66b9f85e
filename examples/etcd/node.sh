#!/bin/sh
# One etcd member, named after the node it runs on ($PSY_NODE_NAME); its data lives on the
# node's volume, so a killed member comes back with what it had.
set -eu
name="$PSY_NODE_NAME"
exec etcd \
  --name "$name" \
  --data-dir /tmp/data/etcd \
  --listen-client-urls http://0.0.0.0:2379 \
  --advertise-client-urls "http://$name:2379" \
  --listen-peer-urls http://0.0.0.0:2380 \
  --initial-advertise-peer-urls "http://$name:2380" \
  --initial-cluster "n1=http://n1:2380,n2=http://n2:2380,n3=http://n3:2380" \
  --initial-cluster-state new \
  --initial-cluster-token psy-example \
  --heartbeat-interval 50 \
  --election-timeout 500 \
  --logger zap --log-level warn
