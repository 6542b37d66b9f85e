#!/bin/sh
# Prints the names of the cases run-case.sh knows, one per line (blank lines are ignored).
echo "case/add"
echo "case/concat"
echo ""
echo "case/sort"
