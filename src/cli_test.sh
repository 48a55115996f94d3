#!/usr/bin/env bash
# The command line: --check accepts the shipped examples, refuses bad configs with exit 1 and a
# message naming file, line and key; usage errors exit 2; show without a daemon exits 1.
set -euo pipefail
bin=${SCTPTUND:?set SCTPTUND to the sctptund binary}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for f in "$repo"/packaging/examples/*.toml; do
  "$bin" --check -c "$f" >/dev/null || fail "--check refused the example $f"
done

printf '[tun]\nname = "tun0"\nmtu = 100000\n' > "$tmp/bad.toml"
set +e
out=$("$bin" --check -c "$tmp/bad.toml" 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--check on a bad config exited $rc, expected 1"
grep -q "bad.toml:3: \[tun\] mtu: must be between" <<<"$out" || fail "unexpected message: $out"

set +e
"$bin" --frobnicate >/dev/null 2>&1; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "an unknown option exited $rc, expected 2"

set +e
out=$("$bin" show -s "$tmp/nobody.sock" 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "show without a daemon exited $rc, expected 1"
grep -q "is sctptund running" <<<"$out" || fail "unexpected message: $out"

"$bin" --version | grep -q "^sctptund [0-9]" || fail "--version"
echo "PASS: cli"
