#!/usr/bin/env bash
# The command line: --check accepts the shipped examples, refuses bad configs with exit 1 and a
# message naming file, line and key; usage errors exit 2; show without a daemon exits 1.
set -euo pipefail
bin=${SCTPTUND:?set SCTPTUND to the sctptund binary}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

key=$("$bin" genkey) || fail "genkey failed"
[[ $key =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "genkey printed '$key', not 32 bytes of base64"
[[ $("$bin" genkey) != "$key" ]] || fail "genkey printed the same key twice"

# The shipped examples, with their key file in a temporary folder instead of /etc/sctptund.
(umask 077 && echo "$key" >"$tmp/site-a-site-b.key")
for f in "$repo"/packaging/examples/*.toml; do
  grep -q 'key_file = "/etc/sctptund/site-a-site-b.key"' "$f" || fail "$f names another key file"
  sed "s|/etc/sctptund/|$tmp/|" "$f" >"$tmp/example.toml"
  out=$("$bin" --check -c "$tmp/example.toml" 2>&1) || fail "--check refused the example $f: $out"
  [[ $out != *warning* ]] || fail "--check warned about the example $f: $out"
done
chmod 644 "$tmp/site-a-site-b.key"
set +e
out=$("$bin" --check -c "$tmp/example.toml" 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--check with a world-readable key file exited $rc, expected 1"
grep -q "example.toml:[0-9]*: \[peer\] key_file: key file '$tmp/site-a-site-b.key' is open to group or others (mode 0644): chmod 600 it" <<<"$out" ||
  fail "unexpected message: $out"

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
