#!/usr/bin/env bash
# Runs a netns test script; if it fails, says so loudly (its whole output stays above) and runs
# it once more. For timing measurements on a shared machine only; the second failure is final.
set -uo pipefail
script=${1:?usage: retry_once.sh SCRIPT}
bash "$script" && exit 0
echo "RETRY: $(basename "$script") failed on its first attempt (output above); running it once more" >&2
exec bash "$script"
