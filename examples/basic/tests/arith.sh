#!/bin/sh
# Shell arithmetic behaves.
set -eu
[ "${1:-}" = "--verbose" ] && set -x
[ "$((6 * 7))" -eq 42 ]
[ "$((17 % 5))" -eq 2 ]
echo "arith ok"
