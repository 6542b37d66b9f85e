#!/bin/sh
# Writes, reads and removes files in the attempt's scratch directory (the only writable place
# besides /tmp).
set -eu
[ "${1:-}" = "--verbose" ] && set -x
dir="${PSY_SCRATCH:?PSY_SCRATCH is not set}/files"
mkdir -p "$dir"
for i in 1 2 3; do echo "line $i" > "$dir/f$i"; done
[ "$(cat "$dir"/f* | wc -l)" -eq 3 ]
rm -r "$dir"
echo "files ok"
