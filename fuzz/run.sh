#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan + UBSan) and runs it for a bounded time over its
# committed seed corpus (fuzz/corpus/TARGET, copied: new inputs stay in a temp dir).
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

# The data path without the real I/O edges: FakeTun and the loopback transport.
pipeline=(src/gateway/gateway.cpp src/gateway/handshake.cpp src/crypto/session.cpp src/gateway/bundle.hpp src/gateway/flow_table.cpp
  src/codec/header_codec.cpp src/codec/header_codec_tcp.cpp src/base/packet.cpp src/gateway/wire.cpp src/gateway/icmp_reply.cpp
  src/gateway/counters.cpp src/base/log.cpp src/base/event_loop.cpp src/transport/loopback_transport.cpp policy/policy.cpp
  tun/fake_tun.cpp tun/gso.cpp tun/gro.cpp)
libs=() max_len=4096
case $target in
  header_codec) sources=(src/codec/header_codec.cpp src/codec/header_codec_tcp.cpp src/base/packet.cpp) ;;
  peer_messages | tun_packets) sources=("${pipeline[@]}") libs=(-lsodium -lev) max_len=20000 ;;
  config) sources=(src/control/config.cpp src/base/endpoint.cpp src/crypto/session.cpp policy/policy.cpp)
    libs=(-ltomlplusplus -lsodium) ;;
  gro) sources=(tun/gro.cpp tun/gso.cpp) max_len=70000 ;;
  fec_input) sources=(src/fec/wire.cpp src/fec/code.cpp src/fec/sender.cpp src/fec/receiver.cpp) libs=(-lsodium -lisal) ;;
  *) echo "fuzz/run.sh: unknown target '$target'" >&2; exit 2 ;;
esac
sources=("${sources[@]/%*.hpp/}")  # headers are listed for the reader only

cd "$repo"
"$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
  -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 \
  "fuzz/${target}_fuzz.cpp" ${sources[@]} "${libs[@]}" -o "$out/${target}_fuzz"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
[[ -d fuzz/corpus/$target ]] && cp -r "fuzz/corpus/$target/." "$corpus/"
"$out/${target}_fuzz" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
echo "fuzz $target: ${seconds}s without a finding"
