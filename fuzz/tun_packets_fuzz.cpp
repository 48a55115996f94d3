// libFuzzer target: everything the local side can put into the TUN, through the whole sending
// pipeline and back out of the far gateway. Built and run by fuzz/run.sh tun_packets SECONDS.
//
// Two gateways with compression (and bundling) agreed; the fuzzer's bytes are a sequence of TUN
// packets [flags (1)][length (2, big-endian)][bytes]. Flags bit 0: the sending TUN has
// virtio-net headers, so the packet starts with a (fuzzed) one — GSO super-packets, partial
// checksums, nonsense. The packets go through base::packet::parse, the policy, the flow table, the
// compressor, bundling, the loopback link, the far side's decompressor and checks. Whatever the
// bytes: no crash, no out-of-bounds access, no UB; every packet the far TUN gets is well formed;
// and a plain packet (no virtio-net header) that the far side delivers is byte-identical to one
// that was sent (compression is lossless).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/log.hpp"
#include "src/base/packet.hpp"
#include "src/gateway/gateway.hpp"
#include "src/transport/loopback_transport.hpp"
#include "tun/fake_tun.hpp"
#include "tun/vnet.hpp"

namespace {

policy::Rule rule(const char* prefix, policy::Action action) {
  policy::Rule r;
  r.prefix = *policy::Prefix::parse(prefix);
  r.action = action;
  r.peer = 0;
  return r;
}

gateway::Options options(std::uint32_t instance) {
  gateway::Options o;
  o.peer_names = {"peer"};
  gateway::PeerSecurity security;
  security.compression = true;
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
    return true;
  }();
  (void)quiet;
  base::EventLoop loop;
  tun::FakeTun tun_a("a"), tun_b("b");
  transport::LoopbackLink link;
  // Everything is tunnelled, except one bypassed (no bypass path: counted) and one dropped
  // prefix (answered with ICMP into tun_a).
  auto rules = [](const char* peer_net) {
    return policy::Policy(
        {rule("0.0.0.0/0", policy::Action::tunnel), rule("::/0", policy::Action::tunnel),
         rule("192.0.2.0/24", policy::Action::bypass), rule(peer_net, policy::Action::drop)},
        policy::Action::drop);
  };
  gateway::Gateway sender(loop, tun_a, link.a(), nullptr, rules("198.51.100.0/24"), options(1));
  gateway::Gateway receiver(loop, tun_b, link.b(), nullptr, rules("203.0.113.0/24"), options(2));
  link.up(16, 16);
  link.deliver();
  check(sender.peers()[0].ready_assocs.size() == 1);

  std::set<std::vector<std::uint8_t>>
      plain_sent;  // as the sender forwards them: cut to the IP length
  bool any_vnet = false;
  while (size >= 3) {
    bool vnet = data[0] & 1;
    std::size_t len = std::min<std::size_t>(base::load_be16(data + 1), size - 3);
    std::span<const std::uint8_t> packet(data + 3, len);
    data += 3 + len;
    size -= 3 + len;
    if (vnet && len < tun::kVnetHdrSize) continue;
    if (len == 0) continue;
    tun_a.set_vnet_hdr(vnet);
    tun_a.inject(packet);
    any_vnet |= vnet;
    base::packet::PacketView sent_view;
    if (!vnet && base::packet::parse(packet, sent_view) == base::packet::ParseError::none)
      plain_sent.emplace(packet.begin(), packet.begin() + sent_view.total_len);
    sender.read_tun();
    link.deliver();
  }
  for (const auto& written : tun_b.take_written()) {
    base::packet::PacketView view;
    check(base::packet::parse(written, view) == base::packet::ParseError::none);
    check(view.total_len == written.size());
    // Without super-packets in play, whatever arrives is exactly a packet that was sent.
    if (!any_vnet) check(plain_sent.count(written) == 1);
  }
  return 0;
}
