#include "policy/policy.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>

using policy::Action;
using policy::Policy;
using policy::Rule;

namespace {

Rule rule(const char* prefix, Action action, std::uint32_t peer = 0,
          std::optional<std::uint8_t> protocol = {}, const char* ports = nullptr) {
  Rule r;
  r.prefix = *policy::Prefix::parse(prefix);
  r.action = action;
  r.peer = peer;
  r.protocol = protocol;
  if (ports) r.ports = *policy::parse_ports(ports);
  return r;
}

policy::Decision decide(const Policy& p, const char* address, std::uint8_t protocol = 6,
                        int port = -1) {
  auto prefix = *policy::Prefix::parse(address);
  policy::Match m;
  m.version = static_cast<std::uint8_t>(prefix.family());
  m.dst = prefix.bytes().data();
  m.protocol = protocol;
  m.has_port = port >= 0;
  m.dst_port = static_cast<std::uint16_t>(port < 0 ? 0 : port);
  return p.decide(m);
}

// The rule the documented semantics pick, by brute force.
policy::Decision oracle(const std::vector<Rule>& rules, Action fallback, const policy::Match& m) {
  std::vector<std::size_t> order(rules.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return rules[a].prefix.length() > rules[b].prefix.length();
  });
  for (std::size_t i : order) {
    const Rule& r = rules[i];
    if (r.prefix.family() != m.version) continue;
    auto masked = policy::Prefix::from_bytes(m.version, m.dst, r.prefix.length());
    if (!(*masked == r.prefix)) continue;
    if (policy::matches(r, m)) return {r.action, r.peer, true, r.redundant};
  }
  return {fallback, 0, false};
}

}  // namespace

TEST_CASE("policy: ports parse") {
  using policy::PortRange;
  CHECK(*policy::parse_ports("80") == std::vector<PortRange>{{80, 80}});
  CHECK(*policy::parse_ports("80,443,8000-8100") ==
        std::vector<PortRange>{{80, 80}, {443, 443}, {8000, 8100}});
  CHECK(*policy::parse_ports(" 22 , 1-1024") == std::vector<PortRange>{{22, 22}, {1, 1024}});
  for (const char* bad : {"", ",", "80,", "a", "100-90", "65536", "1-", "-5", "1--2"}) {
    CAPTURE(bad);
    CHECK_FALSE(policy::parse_ports(bad));
  }
}

TEST_CASE("policy: longest prefix wins, then the first rule whose protocol and ports match") {
  Policy p({rule("10.0.0.0/8", Action::bypass), rule("10.2.0.0/16", Action::tunnel, 1),
            rule("10.2.9.0/24", Action::drop, 0, 6, "22"),
            rule("10.2.9.0/24", Action::tunnel, 2, 6), rule("fd02::/64", Action::tunnel, 3)},
           Action::drop);
  CHECK(decide(p, "10.9.9.9").action == Action::bypass);
  CHECK(decide(p, "10.2.1.1").peer == 1);
  CHECK(decide(p, "10.2.9.5", 6, 22).action == Action::drop);  // first rule of the /24
  CHECK(decide(p, "10.2.9.5", 6, 80).peer == 2);               // second rule of the /24
  auto udp = decide(p, "10.2.9.5", 17, 53);                    // no /24 rule matches: the /16
  CHECK(udp.action == Action::tunnel);
  CHECK(udp.peer == 1);
  CHECK(decide(p, "fd02::1").peer == 3);
  auto none = decide(p, "192.0.2.1");
  CHECK_FALSE(none.matched);
  CHECK(none.action == Action::drop);
  CHECK(decide(Policy({}, Action::bypass), "192.0.2.1").action == Action::bypass);
}

TEST_CASE("policy: a port rule does not match a packet without ports (fragments, ICMP)") {
  Policy p({rule("10.2.0.0/16", Action::tunnel, 0, 6, "80")}, Action::bypass);
  CHECK(decide(p, "10.2.0.1", 6, 80).action == Action::tunnel);
  CHECK(decide(p, "10.2.0.1", 6).action == Action::bypass);
  CHECK(decide(p, "10.2.0.1", 1).action == Action::bypass);
}

TEST_CASE("policy: agrees with a brute-force oracle on random rules and packets") {
  std::mt19937 rng(20261122);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int round = 0; round < 20; ++round) {
    std::vector<Rule> rules;
    for (int i = 0; i < 200; ++i) {
      std::uint8_t bytes[16] = {10, static_cast<std::uint8_t>(pick(4)),
                                static_cast<std::uint8_t>(pick(4)),
                                static_cast<std::uint8_t>(pick(256))};
      Rule r;
      r.prefix = *policy::Prefix::from_bytes(4, bytes, static_cast<unsigned>(8 + pick(25)));
      r.action = static_cast<Action>(pick(3));
      r.peer = static_cast<std::uint32_t>(pick(3));
      r.redundant = r.action == Action::tunnel && pick(4) == 0;
      if (pick(2)) r.protocol = pick(2) ? 6 : 17;
      if (r.protocol && pick(2)) {
        auto a = static_cast<std::uint16_t>(pick(100));
        r.ports.push_back({a, static_cast<std::uint16_t>(a + pick(20))});
      }
      rules.push_back(r);
    }
    Action fallback = static_cast<Action>(pick(3));
    Policy p(rules, fallback);
    for (int i = 0; i < 2000; ++i) {
      std::uint8_t dst[4] = {10, static_cast<std::uint8_t>(pick(4)),
                             static_cast<std::uint8_t>(pick(4)),
                             static_cast<std::uint8_t>(pick(256))};
      policy::Match m;
      m.version = 4;
      m.dst = dst;
      m.protocol = pick(3) ? 6 : 17;
      m.has_port = pick(5) != 0;
      m.dst_port = static_cast<std::uint16_t>(pick(130));
      policy::Decision got = p.decide(m), want = oracle(rules, fallback, m);
      REQUIRE(got.matched == want.matched);
      REQUIRE(got.action == want.action);
      if (got.action == Action::tunnel) REQUIRE(got.peer == want.peer);
      REQUIRE(got.redundant == want.redundant);
    }
  }
}

namespace {

bool source_allowed(const Policy& p, std::uint32_t peer, const char* address) {
  auto prefix = *policy::Prefix::parse(address);
  return p.source_allowed(peer, static_cast<std::uint8_t>(prefix.family()), prefix.bytes().data());
}

policy::SourceGrant grant(const char* prefix, std::uint32_t peer) {
  return {*policy::Prefix::parse(prefix), peer};
}

}  // namespace

TEST_CASE("policy: a peer may send from the addresses tunneled to it and from its grants") {
  Policy p({rule("10.2.0.0/16", Action::tunnel, 1), rule("10.2.9.0/24", Action::tunnel, 2),
            rule("10.2.5.0/24", Action::drop), rule("10.2.6.0/24", Action::tunnel, 2, 6, "443"),
            rule("fd02::/64", Action::tunnel, 1), rule("0.0.0.0/0", Action::bypass),
            rule("10.7.0.0/16", Action::tunnel, 3, 6, "22")},
           Action::drop,
           {grant("10.9.0.0/16", 1), grant("fd00:9::/48", 1), grant("10.2.5.7/32", 2),
            grant("10.2.9.0/24", 0)});
  CHECK(source_allowed(p, 1, "10.2.0.1"));
  CHECK_FALSE(source_allowed(p, 2, "10.2.0.1"));
  CHECK_FALSE(source_allowed(p, 0, "10.2.0.1"));
  // A longer tunnel prefix to another peer is that peer's alone (and a grant's).
  CHECK(source_allowed(p, 2, "10.2.9.1"));
  CHECK(source_allowed(p, 0, "10.2.9.1"));
  CHECK_FALSE(source_allowed(p, 1, "10.2.9.1"));
  // A drop rule takes its prefix from the shorter tunnel rule; a grant inside it still counts.
  CHECK_FALSE(source_allowed(p, 1, "10.2.5.1"));
  CHECK(source_allowed(p, 2, "10.2.5.7"));
  CHECK_FALSE(source_allowed(p, 1, "10.2.5.7"));
  CHECK_FALSE(source_allowed(p, 2, "10.2.5.8"));
  // A rule with ports decides only some packets: the shorter prefix's peer keeps the rest.
  CHECK(source_allowed(p, 2, "10.2.6.1"));
  CHECK(source_allowed(p, 1, "10.2.6.1"));
  CHECK(source_allowed(p, 3, "10.7.0.1"));
  CHECK_FALSE(source_allowed(p, 1, "10.7.0.1"));  // the bypass catch-all decides the rest
  CHECK(source_allowed(p, 1, "fd02::1"));
  CHECK_FALSE(source_allowed(p, 1, "fd02:0:0:1::1"));
  CHECK_FALSE(source_allowed(p, 2, "fd02::1"));
  CHECK(source_allowed(p, 1, "10.9.200.1"));
  CHECK(source_allowed(p, 1, "fd00:9:0:5::1"));
  CHECK_FALSE(source_allowed(p, 1, "fd00:a::1"));
  CHECK_FALSE(source_allowed(p, 1, "192.168.1.1"));
  CHECK_FALSE(p.source_allowed(1, 5, policy::Prefix::parse("10.2.0.1")->bytes().data()));

  CHECK_FALSE(source_allowed(Policy(), 0, "10.0.0.1"));
  // A tunnel catch-all (a hub's default route through the peer): the peer may send from anywhere.
  Policy all({rule("0.0.0.0/0", Action::tunnel, 4), rule("::/0", Action::tunnel, 4)}, Action::drop);
  CHECK(source_allowed(all, 4, "203.0.113.9"));
  CHECK(source_allowed(all, 4, "2001:db8::1"));
  CHECK_FALSE(source_allowed(all, 0, "203.0.113.9"));
}

TEST_CASE("policy: allowed sources agree with brute force on random rules and grants") {
  // Documented: the peers of tunnel rules tried for packets to the address (longest prefix
  // first, file order) up to the first rule without protocol and ports, plus containing grants.
  // That covers every peer some packet to the address is tunneled to (checked too).
  std::mt19937 rng(20261207);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto random_prefix = [&] {
    std::uint8_t bytes[16] = {10, static_cast<std::uint8_t>(pick(4)),
                              static_cast<std::uint8_t>(pick(4)),
                              static_cast<std::uint8_t>(pick(256))};
    return *policy::Prefix::from_bytes(4, bytes, static_cast<unsigned>(8 + pick(25)));
  };
  auto contains = [](const policy::Prefix& prefix, const std::uint8_t* addr) {
    return *policy::Prefix::from_bytes(4, addr, prefix.length()) == prefix;
  };
  for (int round = 0; round < 20; ++round) {
    std::vector<Rule> rules;
    for (int i = 0; i < 100; ++i) {
      Rule r;
      r.prefix = random_prefix();
      r.action = static_cast<Action>(pick(3));
      r.peer = static_cast<std::uint32_t>(pick(3));
      r.redundant = r.action == Action::tunnel && pick(4) == 0;
      if (pick(2)) r.protocol = pick(2) ? 6 : 17;
      if (r.protocol && pick(2)) {
        auto a = static_cast<std::uint16_t>(pick(10));
        r.ports.push_back({a, static_cast<std::uint16_t>(a + pick(3))});
      }
      rules.push_back(r);
    }
    std::vector<policy::SourceGrant> grants;
    for (int i = 0; i < 20; ++i)
      grants.push_back({random_prefix(), static_cast<std::uint32_t>(pick(3))});
    Policy p(rules, Action::drop, grants);
    std::vector<std::size_t> order(rules.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return rules[a].prefix.length() > rules[b].prefix.length();
    });
    for (int i = 0; i < 1000; ++i) {
      std::uint8_t src[4] = {10, static_cast<std::uint8_t>(pick(4)),
                             static_cast<std::uint8_t>(pick(4)),
                             static_cast<std::uint8_t>(pick(256))};
      for (std::uint32_t peer = 0; peer < 3; ++peer) {
        bool want = false;
        for (std::size_t r : order) {
          if (!contains(rules[r].prefix, src)) continue;
          if (rules[r].action == Action::tunnel && rules[r].peer == peer) want = true;
          if (!rules[r].protocol && rules[r].ports.empty()) break;
        }
        for (const policy::SourceGrant& g : grants)
          want = want || (g.peer == peer && contains(g.prefix, src));
        const bool got = p.source_allowed(peer, 4, src);
        REQUIRE(got == want);
        for (std::uint8_t protocol : {1, 6, 17}) {
          for (int port = -1; port < 14; ++port) {
            policy::Match m{4, src, protocol, port >= 0,
                            static_cast<std::uint16_t>(port < 0 ? 0 : port)};
            policy::Decision d = p.decide(m);
            if (d.action == Action::tunnel && d.peer == peer) REQUIRE(got);
          }
        }
      }
    }
  }
}
