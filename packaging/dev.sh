#!/usr/bin/env bash
# The developer's entry point: installs what is needed (Debian 12), builds, and runs things.
#   bash packaging/dev.sh demo    install deps, build, run the two-site demo in network namespaces
#   bash packaging/dev.sh test    install deps, build, run every test (unit, CLI, netns, bounded
#                                 fuzzing) with ctest; then build again with ASan + UBSan
#                                 (build-sanitize/) and run the unit, CLI and netns tests under them
#   bash packaging/dev.sh build   install deps and build only
# Needs root for the namespaces (the tests fail loudly without it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
what=${1:-}

case "$what" in
  demo|test|build) ;;
  *) echo "usage: bash packaging/dev.sh demo|test|build" >&2; exit 2 ;;
esac

bash "$repo/packaging/install-deps"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "CMAKE_HOME_DIRECTORY:INTERNAL=$repo\$" "$build/CMakeCache.txt"; then
  rm -rf "$build"  # a build directory of another checkout
fi
cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"

case "$what" in
  build) ;;
  demo) SCTPTUND="$build/sctptund" TOOLS_DIR="$build" bash "$repo/netns-tests/demo.sh" ;;
  test)
    (cd "$build" && ctest --output-on-failure --timeout 900)
    sanitize=${SANITIZE_BUILD_DIR:-$build-sanitize}
    cmake -S "$repo" -B "$sanitize" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCTPTUND_SANITIZE=ON >/dev/null
    cmake --build "$sanitize" -j "$(nproc)"
    (cd "$sanitize" && ctest --output-on-failure --timeout 900 -LE fuzz)
    ;;
esac
