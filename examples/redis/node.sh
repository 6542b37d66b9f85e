#!/bin/sh
# A redis server on the node's volume (append-only file on), with any extra arguments.
set -eu
exec redis-server --port 6379 --bind 0.0.0.0 --protected-mode no \
  --dir /tmp/data --appendonly yes --save "" --repl-diskless-sync-delay 0 "$@"
