#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan + UBSan, linked against the project's libraries) and
# runs it for a bounded time over its committed seed corpus (fuzz/corpus/TARGET, copied: new
# inputs stay in a temp dir).
#   bash fuzz/run.sh TARGET SECONDS [BUILD_DIR]      e.g. bash fuzz/run.sh header_codec 30
# Exits non-zero when the fuzzer finds a crash, a leak or undefined behaviour.
set -euo pipefail
target=${1:?usage: fuzz/run.sh TARGET SECONDS [BUILD_DIR]}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [BUILD_DIR]}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${3:-$repo/build}/fuzz
cxx=$(command -v clang++-14 || command -v clang++ || true)
[[ -n $cxx ]] || { echo "fuzz/run.sh: clang++ not found (packaging/install-deps installs clang-14)" >&2; exit 1; }
mkdir -p "$out"

case $target in
  header_codec | peer_messages | tun_packets | config | fec_input | gro | path_probes | \
    transport_datagrams | control_requests) ;;
  *) echo "fuzz/run.sh: unknown target '$target'" >&2; exit 2 ;;
esac
max_len=4096
case $target in
  peer_messages | tun_packets) max_len=20000 ;;
  gro) max_len=70000 ;;
  control_requests) max_len=8192 ;;  # past the longest request (4096 bytes)
esac

# A build of its own with clang (CMake option SCTPTUND_FUZZ): the project's libraries instrumented
# for coverage, ASan and UBSan, the target linked against them. Configured once; builds of several
# targets (ctest may start them one after the other) share it, one at a time.
cmake_dir=$out/cmake
exec 9>"$out/build.lock"
flock 9
if [[ ! -f $cmake_dir/CMakeCache.txt ]]; then
  cmake -S "$repo" -B "$cmake_dir" -G Ninja -DSCTPTUND_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-g -O1" >/dev/null
fi
if ! cmake --build "$cmake_dir" --target "${target}_fuzz" >"$out/build-$target.log" 2>&1; then
  cat "$out/build-$target.log" >&2
  echo "fuzz/run.sh: building ${target}_fuzz failed" >&2
  exit 1
fi
flock -u 9
cd "$repo"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
[[ -d fuzz/corpus/$target ]] && cp -r "fuzz/corpus/$target/." "$corpus/"
# The end of the output: the final coverage line and stats, or the finding (the recommended
# dictionary, printed before them, left out).
"$cmake_dir/${target}_fuzz" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 "$corpus" 2>&1 |
  grep -v -e '^"' -e 'ecommended dictionary' | tail -n 12
echo "fuzz $target: ${seconds}s without a finding"
