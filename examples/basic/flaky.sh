#!/bin/sh
# Fails on the first attempt and passes on the retry, to show how psy reports flaky tests.
if [ "${PSY_ATTEMPT:-1}" = 1 ]; then
    echo "flaky: attempt 1 fails on purpose" >&2
    exit 1
fi
echo "flaky: attempt $PSY_ATTEMPT passes"
