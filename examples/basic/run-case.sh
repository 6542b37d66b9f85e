#!/bin/sh
# Runs one case listed by list-cases.sh; extra arguments (a variant's args) are accepted.
set -eu
name="$1"
[ "${2:-}" = "--verbose" ] && set -x
case "$name" in
    case/add) [ "$((2 + 3))" -eq 5 ] ;;
    case/concat) [ "$(printf '%s%s' ab cd)" = "abcd" ] ;;
    case/sort) [ "$(printf 'b\na\nc\n' | sort | tr -d '\n')" = "abc" ] ;;
    *) echo "run-case: unknown case $name" >&2; exit 2 ;;
esac
echo "$name ok"
