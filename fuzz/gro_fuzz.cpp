// libFuzzer target: tun::gro::Coalescer. The fuzzer's bytes are a sequence of packets
// [length (2, big-endian)][bytes], written through the coalescer as the gateway writes into a
// TUN (take() before a packet that cannot join, refused packets as they came). Whatever the
// bytes: no crash, no out-of-bounds access, no UB, nothing larger than 64 KB taken, and
// tun::gso::Segmenter turns what was written back into exactly the packets given, in order.
// Built and run by fuzz/run.sh gro SECONDS.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "src/base/bytes.hpp"
#include "tun/gro.hpp"
#include "tun/gso.hpp"
#include "tun/vnet.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using Bytes = std::vector<std::uint8_t>;
  std::vector<Bytes> in, out;
  while (size >= 2) {
    std::size_t len = base::load_be16(data);
    if (len > size - 2) len = size - 2;
    in.emplace_back(data + 2, data + 2 + len);
    data += 2 + len;
    size -= 2 + len;
  }
  tun::gro::Coalescer c;
  tun::gso::Segmenter seg;
  auto write = [&](const tun::PacketBuf* buf) {
    check(buf != nullptr);
    auto hdr = tun::VnetHdr::load(buf->data());
    check(hdr.has_value());
    auto packet = buf->data().subspan(tun::kVnetHdrSize);
    check(packet.size() <= 65535);
    check(seg.segment(*hdr, packet, [&](std::span<const std::uint8_t> s) {
      out.emplace_back(s.begin(), s.end());
    }));
  };
  for (const Bytes& p : in) {
    if (!c.offer(p, [&](const tun::PacketBuf& b) { write(&b); })) out.push_back(p);
  }
  if (c.pending()) write(c.take());
  check(out == in);
  return 0;
}
