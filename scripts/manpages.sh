#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Man pages from the same text as --help: mmar(1) and mmar-VERB(1) for each
# verb, with help2man (Debian package help2man).
#   scripts/manpages.sh MMAR OUTDIR
set -euo pipefail
mmar=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
mkdir -p "$out"
version=$("$mmar" --version | awk '{print $2}')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
help2man --no-info --no-discard-stderr -n "mmappable archives of binaries and type information" \
  -N -o "$out/mmar.1" "$mmar"
for verb in $("$mmar" --help | awk '/^Verbs:/{on=1; next} on && /^  [a-z]/{print $1}'); do
  # help2man runs a program with --help and --version: one per verb.
  printf '#!/bin/sh\nif [ "$1" = --version ]; then exec %q --version; fi\nexec %q %q "$@"\n' "$mmar" "$mmar" "$verb" \
    > "$work/mmar-$verb"
  chmod +x "$work/mmar-$verb"
  summary=$("$mmar" --help | awk -v v="$verb" '$1 == v {$1=""; sub(/^ +/, ""); print}')
  help2man --no-info --no-discard-stderr -n "$summary" -N --version-string "mmar-$verb $version" \
    -o "$out/mmar-$verb.1" "$work/mmar-$verb"
done
