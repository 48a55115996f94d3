#!/usr/bin/env bash
# Style: every C++ file git tracks is formatted as .clang-format says (clang-format 14, as
# packaging/install-deps installs it). Prints the files that differ and fails when there is one.
#   bash src/format_test.sh [REPO]          fix with: clang-format-14 -i FILE...
set -euo pipefail
repo=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$repo"
format=$(command -v clang-format-14 || command -v clang-format || true)
[[ -n $format ]] || { echo "format: clang-format not found (packaging/install-deps installs clang-format-14)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
((${#files[@]} > 100)) || { echo "format: only ${#files[@]} C++ files found: is $repo the checkout?" >&2; exit 1; }
bad=()
for f in "${files[@]}"; do "$format" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f"); done
if ((${#bad[@]})); then
  printf 'format: differs from .clang-format: %s\n' "${bad[@]}"
  exit 1
fi
echo "format: ${#files[@]} files as .clang-format says"
