#!/usr/bin/env bash
# The counters `sctptund show` prints and their documentation agree, both ways:
#  - every key of `show --json` (the field and object names in src/control/commands.cpp) is named
#    in man/sctptund.8, section JSON, and every snake_case name that section sets in bold is a key;
#  - every drop reason (src/gateway/counters.cpp) has its entry in the "dropped" list of the
#    section Text, and that list has no other;
#  - the snake_case names in bold in SECURITY and in backquotes in doc/PROTOCOL.md are keys, drop
#    reasons or configuration keys (man/sctptund.toml.5), or libsodium's (crypto_*).
# Prints each disagreement and fails when there is one.
#   bash src/counters_doc_test.sh [REPO]
set -euo pipefail
repo=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$repo"
man=man/sctptund.8

keys=$(grep -oE '(field|open)\("[a-z0-9_]+"' src/control/commands.cpp | sed -E 's/.*\("//; s/"$//' | sort -u)
drops=$(grep -oE 'return "[a-z0-9_]+";' src/gateway/counters.cpp | sed -E 's/return "//; s/";$//' | sort -u)
(($(wc -l <<<"$keys") > 100)) || { echo "counters_doc: only $(wc -l <<<"$keys") JSON keys found in src/control/commands.cpp"; exit 1; }
(($(wc -l <<<"$drops") > 10)) || { echo "counters_doc: only $(wc -l <<<"$drops") drop reasons found in src/gateway/counters.cpp"; exit 1; }

# section FROM: the lines from the heading FROM (a regex) to the next heading of that level.
section() { awk -v from="$1" -v level="$2" '$0 ~ from {on = 1; next} on && index($0, level " ") == 1 {exit} on' "$man"; }
# The words of the lines that set text in bold (.B, .BR, .RB, .BI, .IB).
bold_words() { grep -E '^\.(B|BR|RB|BI|IB)( |$)' | sed -E 's/^\.[A-Z]+//; s/\\-/-/g' | grep -oE '[a-z][a-z0-9_]*' | sort -u || true; }

bad=0
json=$(section '^\.SS JSON' .SS | bold_words)
for k in $keys; do
  grep -qx "$k" <<<"$json" || { echo "counters_doc: JSON key '$k' is not named in $man, section JSON"; bad=1; }
done
for w in $(grep '_' <<<"$json" || true); do
  grep -qx "$w" <<<"$keys" || { echo "counters_doc: $man, section JSON, names '$w', which show --json does not print"; bad=1; }
done

# The "dropped" entry of the section Text: from ".B dropped" to the end of its list (.RE).
listed=$(section '^\.SS Text' .SS | awk '/^\.B dropped$/ {on = 1; next} on && /^\.RE/ {on = 0} on && /^\.B / {print $2}' | sort -u)
for d in $drops; do
  grep -qx "$d" <<<"$listed" || { echo "counters_doc: drop reason '$d' has no entry in $man, section Text, dropped"; bad=1; }
done
for w in $listed; do
  grep -qx "$w" <<<"$drops" || { echo "counters_doc: $man, section Text, dropped lists '$w', which is no drop reason"; bad=1; }
done

config=$(grep -oE '[a-z][a-z0-9_]*' man/sctptund.toml.5 | sort -u)
known() { grep -qx "$1" <<<"$keys" || grep -qx "$1" <<<"$drops" || grep -qx "$1" <<<"$config" || [[ $1 == crypto_* ]]; }
for w in $(section '^\.SH SECURITY' .SH | bold_words | grep '_' || true); do
  known "$w" || { echo "counters_doc: $man, section SECURITY, names '$w', which is no counter, drop reason or configuration key"; bad=1; }
done
for w in $(grep -oE '`[a-z][a-z0-9]*_[a-z0-9_]*`' doc/PROTOCOL.md | tr -d '`' | sort -u); do
  known "$w" || { echo "counters_doc: doc/PROTOCOL.md names '$w', which is no counter, drop reason or configuration key"; bad=1; }
done

((bad == 0)) || exit 1
echo "counters_doc: $(wc -l <<<"$keys") JSON keys and $(wc -l <<<"$drops") drop reasons documented, no other names"
