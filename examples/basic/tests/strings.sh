#!/bin/sh
# Text tools and the variant's environment.
set -eu
[ "${1:-}" = "--verbose" ] && set -x
[ "$(echo 'Hello Psyduck' | tr 'a-z' 'A-Z')" = "HELLO PSYDUCK" ]
[ "$(echo 'a,b,c' | cut -d, -f2)" = "b" ]
if [ "${PSY_VARIANT:-}" = "verbose" ] && [ "${VERBOSE:-}" != "1" ]; then
    echo "strings: the verbose variant should set VERBOSE=1" >&2
    exit 1
fi
echo "strings ok"
