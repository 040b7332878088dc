#!/bin/sh
# exported-symbols.sh LIB - the functions and data a shared library exports, one per line:
# "name node" (node "-" for an unversioned symbol), sorted. The one place that reads nm -D, for
# docs/symbols.md and the tests.
set -eu
nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRV]$/ {
    n = split($3, p, "@"); node = n > 1 ? p[n] : "-"; print p[1], node }' | sort -u
