#!/bin/sh
# Checks what every attempt can rely on: the PSY_* variables, its working directory and the
# two writable places (/tmp and $PSY_SCRATCH).
set -eu
[ "${1:-}" = "--verbose" ] && set -x

for var in PSY_RUN_ID PSY_TEST_ID PSY_ATTEMPT PSY_SCRATCH; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "smoke: $var is not set" >&2
        exit 1
    fi
done
[ -f psyduck.toml ] || { echo "smoke: not started in the manifest's directory" >&2; exit 1; }
[ "${GREETING:-}" = "hello" ] || { echo "smoke: env from the manifest is missing" >&2; exit 1; }

echo "scratch works" > "$PSY_SCRATCH/note"
grep -q "scratch works" "$PSY_SCRATCH/note"
tmp=$(mktemp /tmp/smoke.XXXXXX)
echo "tmp works" > "$tmp"
grep -q "tmp works" "$tmp"
rm -f "$tmp"
echo "smoke: $PSY_TEST_ID (variant ${PSY_VARIANT:-none}) ok"
