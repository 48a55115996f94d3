#include "src/config.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

const char* kValid = R"(
[tun]
name = "tun0"
mtu = 1400
addresses = ["10.255.0.1/30", "fd00:255::1/64"]

[transport]
kind = "udp"
local = ["192.0.2.1"]
port = 9899

[control]
socket = "/tmp/gw1.sock"

[[peer]]
name = "site-b"
remote = ["192.0.2.2"]
port = 9899

[[policy]]
prefix = "10.2.0.0/16"
action = "tunnel"
peer = "site-b"

[[policy]]
prefix = "fd02::/64"
action = "tunnel"
peer = "site-b"
)";

// The error message for text, which must be invalid.
std::string error_of(const std::string& text) {
  try {
    config::parse_config(text, "test.toml");
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  FAIL("config was accepted: " << text);
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("config: the documented example is valid") {
  config::Config c = config::parse_config(kValid, "test.toml");
  CHECK(c.tun.name == "tun0");
  CHECK(c.tun.mtu == 1400);
  CHECK(c.tun.addresses.size() == 2);
  CHECK(c.transport.kind == "udp");
  REQUIRE(c.transport.local.size() == 1);
  CHECK(c.transport.local[0].to_string() == "192.0.2.1:9899");
  CHECK(c.control.socket == "/tmp/gw1.sock");
  REQUIRE(c.peers.size() == 1);
  CHECK(c.peers[0].remote[0].to_string() == "192.0.2.2:9899");
  REQUIRE(c.rules.size() == 2);
  CHECK(c.rules[1].prefix.to_string() == "fd02::/64");
  CHECK(c.rules[1].peer == 0);
  CHECK(c.warnings.empty());
}

TEST_CASE("config: defaults") {
  config::Config c = config::parse_config("", "empty.toml");
  CHECK(c.tun.name == "tun0");
  CHECK(c.tun.mtu == 1400);
  CHECK(c.transport.port == 9899);
  CHECK(c.transport.streams == 256);
  CHECK(c.transport.local.size() == 1);
  CHECK(c.control.socket == "/run/sctptund/tun0.sock");
}

TEST_CASE("config: errors name the file, the line and the key") {
  std::string e = error_of("[tun]\nname = \"tun0\"\nmtuu = 1400\n");
  CHECK(contains(e, "test.toml:3:"));
  CHECK(contains(e, "mtuu"));
  CHECK(contains(e, "unknown key"));

  e = error_of("[tun]\nmtu = 99\n");
  CHECK(contains(e, "test.toml:2: [tun] mtu: must be between 576 and 65535, not 99"));

  e = error_of("[tun]\nmtu = \"big\"\n");
  CHECK(contains(e, "[tun] mtu: must be an integer"));

  e = error_of("[tun]\nname = \"this-name-is-far-too-long\"\n");
  CHECK(contains(e, "[tun] name"));

  e = error_of("[tun]\naddresses = [\"10.0.0.1\"]\n");
  CHECK(
      contains(e, "test.toml:2: [tun] addresses: '10.0.0.1' is not an address with prefix length"));

  e = error_of("[transport]\nkind = \"carrier-pigeon\"\n");
  CHECK(contains(e, "[transport] kind"));

  e = error_of("[transport]\nlocal = [\"192.0.2.300\"]\n");
  CHECK(contains(e, "'192.0.2.300' is not an IPv4 or IPv6 address"));

  e = error_of("[[peer]]\nname = \"b\"\n");
  CHECK(contains(e, "missing required key 'remote'"));

  e = error_of(
      "[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\n[[peer]]\nname = \"b\"\nremote = "
      "[\"192.0.2.3\"]\n");
  CHECK(contains(e, "test.toml:4:"));
  CHECK(contains(e, "'b' is used by another peer"));

  e = error_of("[[policy]]\nprefix = \"10.2.0.0/16\"\naction = \"tunnel\"\npeer = \"nobody\"\n");
  CHECK(contains(e, "test.toml:4: [policy] peer: no [[peer]] is named 'nobody'"));

  e = error_of("[[policy]]\nprefix = \"10.2.0.0/33\"\naction = \"drop\"\n");
  CHECK(contains(e, "test.toml:2: [policy] prefix"));

  e = error_of("[[policy]]\nprefix = \"10.2.0.0/16\"\naction = \"teleport\"\n");
  CHECK(contains(e, "test.toml:3: [policy] action"));

  e = error_of("[[policy]]\nprefix = \"10.2.0.0/16\"\naction = \"tunnel\"\n");
  CHECK(contains(e, "needs a 'peer'"));

  e = error_of("[surprise]\nx = 1\n");
  CHECK(contains(e, "test.toml:1: unknown section or key 'surprise'"));

  e = error_of("[tun\nname = 1\n");
  CHECK(contains(e, "test.toml:1:"));

  e = error_of("peer = 3\n");
  CHECK(contains(e, "must be an array of tables"));

  e = error_of("[control]\nsocket = \"relative.sock\"\n");
  CHECK(contains(e, "[control] socket: must be an absolute path"));
}

TEST_CASE("config: a peer that no rule uses is a warning") {
  config::Config c =
      config::parse_config("[[peer]]\nname = \"idle\"\nremote = [\"192.0.2.9\"]\n", "t.toml");
  REQUIRE(c.warnings.size() == 1);
  CHECK(contains(c.warnings[0], "idle"));
}

TEST_CASE("config: a missing file is an error that names it") {
  CHECK_THROWS_WITH_AS(config::load_config("/nonexistent/sctptund.toml"),
                       "/nonexistent/sctptund.toml: cannot open config file", config::ConfigError);
}

TEST_CASE("config: rules with protocol and ports, bypass, routes, default") {
  config::Config c = config::parse_config(R"(
[tun]
default = "bypass"
fwmark = 77
bypass_table = 1077
[[peer]]
name = "b"
remote = ["192.0.2.2"]
[[route]]
prefix = "10.2.0.0/16"
[[route]]
prefix = "fd02::/64"
[[policy]]
prefix = "10.2.0.0/16"
protocol = "tcp"
ports = "80,443,8000-8100"
action = "tunnel"
peer = "b"
[[policy]]
prefix = "10.2.0.0/16"
protocol = "47"
action = "drop"
[[policy]]
prefix = "10.2.9.0/24"
action = "bypass"
)",
                                          "t.toml");
  CHECK(c.tun.default_action == policy::Action::bypass);
  CHECK(c.tun.fwmark == 77);
  CHECK(c.tun.bypass_table == 1077);
  REQUIRE(c.routes.size() == 2);
  CHECK(c.routes[1].prefix.to_string() == "fd02::/64");
  REQUIRE(c.rules.size() == 3);
  CHECK(c.rules[0].protocol == std::optional<std::uint8_t>(6));
  CHECK(c.rules[0].ports.size() == 3);
  CHECK(c.rules[1].protocol == std::optional<std::uint8_t>(47));
  CHECK(c.rules[2].action == policy::Action::bypass);
}

TEST_CASE("config: bad rules, routes and tun keys are errors naming line and key") {
  auto e = error_of("[[policy]]\nprefix = \"10.2.0.0/16\"\nports = \"80\"\naction = \"drop\"\n");
  CHECK(contains(e, "test.toml:3: [policy] ports: needs protocol"));
  e = error_of(
      "[[policy]]\nprefix = \"10.2.0.0/16\"\nprotocol = \"tcp\"\nports = \"90-80\"\naction = "
      "\"drop\"\n");
  CHECK(contains(e, "test.toml:4: [policy] ports: '90-80' is not a port list"));
  e = error_of("[[policy]]\nprefix = \"10.2.0.0/16\"\nprotocol = \"gre-ish\"\naction = \"drop\"\n");
  CHECK(contains(e, "test.toml:3: [policy] protocol"));
  e = error_of("[[policy]]\nprefix = \"10.2.0.0/16\"\naction = \"bypass\"\npeer = \"x\"\n");
  CHECK(contains(e, "only an action \"tunnel\" takes a peer"));
  e = error_of("[[route]]\nprefix = \"10.2.0.0/33\"\n");
  CHECK(contains(e, "test.toml:2: [route] prefix"));
  e = error_of("[[route]]\nvia = \"x\"\n");
  CHECK(contains(e, "[route] via: unknown key"));
  e = error_of("[tun]\ndefault = \"tunnel\"\n");
  CHECK(contains(e, "test.toml:2: [tun] default: 'tunnel' is not one of: drop, bypass"));
  e = error_of("[tun]\nbypass_table = 254\n");
  CHECK(contains(e, "[tun] bypass_table: 253, 254 and 255"));
}

TEST_CASE("config: what a reload can apply and what needs a restart") {
  config::Config a = config::parse_config(kValid, "a.toml");
  config::Config b = a;
  b.rules.pop_back();
  b.routes.push_back({*policy::Prefix::parse("10.9.0.0/16")});
  b.tun.default_action = policy::Action::bypass;
  CHECK(config::restart_needed(a, b).empty());
  b.peers[0].remote = {*net::Endpoint::parse("192.0.2.9", 9899)};
  b.transport.port = 1;
  b.tun.mtu = 1300;
  auto needed = config::restart_needed(a, b);
  CHECK(needed.size() == 3);
}

TEST_CASE("config: [[peer]] pool: associations kept ready, 1..16, default 2") {
  config::Config c = config::parse_config(kValid, "test.toml");
  REQUIRE(c.peers.size() == 1);
  CHECK(c.peers[0].pool == 2);
  std::string text = kValid;
  std::string with_pool = text;
  with_pool.replace(with_pool.find("port = 9899\n\n[[policy]]"), 11, "port = 9899\npool = 4");
  c = config::parse_config(with_pool, "test.toml");
  CHECK(c.peers[0].pool == 4);
  config::Config base = config::parse_config(kValid, "test.toml");
  CHECK_FALSE(config::restart_needed(base, c).empty());  // a pool change needs a restart
  for (const char* bad : {"pool = 0", "pool = 17", "pool = \"two\""}) {
    std::string t = text;
    t.replace(t.find("port = 9899\n\n[[policy]]"), 11, std::string("port = 9899\n") + bad);
    std::string e = error_of(t);
    INFO(e);
    CHECK(contains(e, "[peer] pool"));
  }
}
