#pragma once
// Two gateways, each with a FakeTun and a fake bypass, joined by a LoopbackLink: the whole
// pipeline without root, for the gateway's tests.

#include <doctest/doctest.h>

#include "src/gateway/gateway.hpp"
#include "src/gateway/icmp_reply.hpp"

#include "src/base/bytes.hpp"
#include "src/base/checksum.hpp"
#include "src/base/test_packets.hpp"
#include "src/gateway/wire.hpp"
#include "src/transport/loopback_transport.hpp"
#include "tun/fake_tun.hpp"

namespace gateway::test_sites {

inline policy::Rule tunnel_rule(const char* prefix) {
  policy::Rule rule;
  rule.prefix = *policy::Prefix::parse(prefix);
  rule.action = policy::Action::tunnel;
  rule.peer = 0;
  return rule;
}

struct FakeBypass final : gateway::BypassPath {
  std::vector<std::vector<std::uint8_t>> sent;
  bool routable = true;
  bool send(std::span<const std::uint8_t> packet) override {
    if (!routable) return false;
    sent.emplace_back(packet.begin(), packet.end());
    return true;
  }
};

struct TwoSites {
  base::EventLoop loop;
  FakeBypass bypass1, bypass2;
  tun::FakeTun tun1{"tun1"}, tun2{"tun2"};
  transport::LoopbackLink link;
  gateway::Gateway gw1, gw2;

  // Compression off unless a test asks for it: most tests look at the messages themselves.
  static gateway::PeerSecurity plain(bool compress = false, bool bundle = true) {
    gateway::PeerSecurity security;
    security.compression = compress;
    security.bundle = bundle;
    return security;
  }
  static gateway::Options options(std::uint32_t instance, const gateway::PeerSecurity& security) {
    gateway::Options o;
    o.peer_names = {"other"};
    o.peer_security = {security};
    o.instance = instance;
    o.batch_size = 8;
    return o;
  }
  static gateway::Options options(std::uint32_t instance, bool compress = false) {
    return options(instance, plain(compress));
  }

  explicit TwoSites(bool compress = false, bool bundle2 = true)
      : TwoSites(plain(compress), plain(compress, bundle2)) {}
  TwoSites(const gateway::PeerSecurity& security1, const gateway::PeerSecurity& security2)
      : gw1(loop, tun1, link.a(), &bypass1,
            policy::Policy({tunnel_rule("10.2.0.0/16"), tunnel_rule("fd02::/64")},
                           policy::Action::drop),
            options(1, security1)),
        gw2(loop, tun2, link.b(), &bypass2,
            policy::Policy({tunnel_rule("10.1.0.0/16"), tunnel_rule("fd01::/64")},
                           policy::Action::drop),
            options(2, security2)) {}
  // Both sides with the given options (peer names, instances and security as the test sets them).
  TwoSites(const gateway::Options& options1, const gateway::Options& options2)
      : gw1(loop, tun1, link.a(), &bypass1,
            policy::Policy({tunnel_rule("10.2.0.0/16"), tunnel_rule("fd02::/64")},
                           policy::Action::drop),
            options1),
        gw2(loop, tun2, link.b(), &bypass2,
            policy::Policy({tunnel_rule("10.1.0.0/16"), tunnel_rule("fd01::/64")},
                           policy::Action::drop),
            options2) {}

  void up() {
    link.up(16, 16);
    link.deliver();  // HELLOs (and AUTHs)
  }
};

// A TCP/IPv4 packet of a bulk flow with correct checksums, so the compressor can compress it.
inline std::vector<std::uint8_t> tcp4_segment(std::uint32_t seq, std::uint16_t ip_id,
                                              std::size_t payload, std::uint32_t ack = 0,
                                              std::uint16_t sport = 40000) {
  auto p = base::test_packets::ipv4("10.1.0.2", "10.2.0.2", IPPROTO_TCP, sport, 5001, payload);
  base::store_be16(&p[4], ip_id);
  p[6] = 0x40;  // DF
  base::store_be32(&p[24], seq);
  base::store_be32(&p[28], ack);
  p[33] = 0x18;  // PSH ACK
  p[34] = 0x01;  // window 256
  p[10] = p[11] = 0;
  base::store_be16(&p[10], base::checksum::internet(std::span(p).first(20)));
  // Pseudo-header: the addresses, then protocol and TCP length as numbers.
  const std::uint32_t pseudo = base::checksum::add(std::span(p).subspan(12, 8)) + IPPROTO_TCP +
                               static_cast<std::uint32_t>(p.size() - 20);
  p[36] = p[37] = 0;
  base::store_be16(&p[36], base::checksum::internet(std::span(p).subspan(20), pseudo));
  return p;
}
}  // namespace gateway::test_sites
