#!/usr/bin/env bash
# An agency's encode step, on the agency's own machine, with the shared secret.
# Usage: examples/agency_encode.sh INPUT AGENCY KEY_FILE OUTPUT.parquet [SCHEMA.toml]
# Send only OUTPUT.parquet to the linkage unit: never the input, the key or the audit truth.
set -euo pipefail
SIMLINK=${SIMLINK:-simlink}   # e.g. SIMLINK="python -m simlink" for a checkout
input=$1 agency=$2 key=$3 output=$4 schema=${5:-}
schema_option=()
if [ -n "$schema" ]; then schema_option=(--schema "$schema"); fi

# 1. Every agency must encode with the same schema: compare this fingerprint with theirs.
$SIMLINK schema check ${schema:+"$schema"}
# 2. Encode. A bad value stops it with one line naming file, row and column (exit 2).
$SIMLINK encode "$input" --key "$key" --agency "$agency" "${schema_option[@]}" -o "$output"
# 3. Before sending: attack the file as an outsider would; exit 1 if a risk exceeds 1%.
$SIMLINK audit "$output" --truth "$input" --json "${output%.parquet}.audit.json" --fail-on-risk
