// libFuzzer target: everything a peer can send, through the whole receiving pipeline. Built and
// run by fuzz/run.sh peer_messages SECONDS.
//
// A gateway (FakeTun, LoopbackTransport) completes its handshake with a genuine peer gateway,
// then receives the fuzzer's messages as if the authenticated peer had sent them: wire decoding,
// HELLO/AUTH out of place, BUNDLE splitting, PACKET_GSO checks and software segmentation, header
// decompression, the inner packet checks, CONTEXT_RESET. The first input byte picks the setup:
//  bit 0: the receiving TUN has virtio-net headers (GSO passes through) or not (segmented here)
//  bit 1: compression agreed
//  bit 2: sealing agreed (then most inputs die at authentication: the path of forged messages)
//  bit 3: striping agreed (SEQUENCED messages reach the resequencer)
// The rest is a sequence of messages [stream (1)][length (2, big-endian)][bytes]. Whatever the
// bytes: no crash, no out-of-bounds access, no UB, and every packet written into the TUN is a
// well-formed IP packet whose length field matches (checked again here with base::packet::parse).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/log.hpp"
#include "src/base/packet.hpp"
#include "src/gateway/gateway.hpp"
#include "src/transport/loopback_transport.hpp"
#include "tun/fake_tun.hpp"
#include "tun/gso.hpp"
#include "tun/vnet.hpp"

namespace {

policy::Rule tunnel_rule(const char* prefix) {
  policy::Rule rule;
  rule.prefix = *policy::Prefix::parse(prefix);
  rule.action = policy::Action::tunnel;
  rule.peer = 0;
  return rule;
}

gateway::Options options(std::uint32_t instance, std::uint8_t setup) {
  gateway::Options o;
  o.peer_names = {"peer"};
  gateway::PeerSecurity security;
  security.compression = setup & 2;
  security.stripe = setup & 8;
  if (setup & 4) {
    crypto::Key key;
    key.fill(0x42);
    security.psk = key;
    security.seal = true;
  }
  o.peer_security = {security};
  o.instance = instance;
  o.batch_size = 8;
  return o;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    base::log::set_level(base::log::Level::error);
    return crypto::init();
  }();
  check(quiet);
  if (size == 0) return 0;
  std::uint8_t setup = data[0];
  ++data;
  --size;

  base::EventLoop loop;
  tun::FakeTun tun_a("a"), tun_b("b");
  tun_b.set_vnet_hdr(setup & 1);
  transport::LoopbackLink link;
  gateway::Gateway sender(loop, tun_a, link.a(), nullptr,
                          policy::Policy({tunnel_rule("10.2.0.0/16")}, policy::Action::drop),
                          options(1, setup));
  // The peer may send from any source, so every well-formed packet reaches the TUN writing path.
  gateway::Gateway receiver(loop, tun_b, link.b(), nullptr,
                            policy::Policy({tunnel_rule("10.1.0.0/16")}, policy::Action::drop,
                                           {{*policy::Prefix::parse("0.0.0.0/0"), 0},
                                            {*policy::Prefix::parse("::/0"), 0}}),
                            options(2, setup));
  link.up(16, 16);
  link.deliver();
  check(receiver.peers()[0].ready_assocs.size() == 1);
  transport::AssocId assoc = receiver.assocs().begin()->first;

  tun::PacketBuf buf;
  while (size >= 3 && !receiver.assocs().empty()) {
    std::uint16_t stream = data[0] % 17;  // 16 streams and one beyond
    std::size_t len = std::min<std::size_t>(base::load_be16(data + 1), size - 3);
    buf.assign({data + 3, len});
    data += 3 + len;
    size -= 3 + len;
    receiver.on_message(assoc, stream, buf);
  }
  link.down();  // the peer's last association: what the resequencer holds is written now
  for (const auto& written : tun_b.take_written()) {
    std::span<const std::uint8_t> packet(written);
    tun::VnetHdr hdr;
    if (setup & 1) {
      check(packet.size() >= tun::kVnetHdrSize);
      hdr = *tun::VnetHdr::load(packet);
      packet = packet.subspan(tun::kVnetHdrSize);
    }
    base::packet::PacketView view;
    check(base::packet::parse(packet, view) == base::packet::ParseError::none);
    check(view.total_len == packet.size());
    check(tun::gso::vnet_hdr_matches(hdr, view));  // only headers a kernel would make
  }
  return 0;
}
