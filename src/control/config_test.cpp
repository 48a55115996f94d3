#include "src/control/config.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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
encryption = "none"
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
    control::parse_config(text, "test.toml");
  } catch (const control::ConfigError& e) {
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
  control::Config c = control::parse_config(kValid, "test.toml");
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
  // The one warning: this peer has no key.
  REQUIRE(c.warnings.size() == 1);
  CHECK(contains(c.warnings[0], "peer 'site-b': no key_file: NOT authenticated and NOT encrypted"));
}

TEST_CASE("config: defaults") {
  control::Config c = control::parse_config("", "empty.toml");
  CHECK(c.tun.name == "tun0");
  CHECK(c.tun.mtu == 1500);
  CHECK(c.transport.port == 9899);
  CHECK(c.transport.heartbeat_ms == 1000);
  CHECK(c.transport.keepalive_s == 25);
  CHECK(c.transport.path_mtu == 1500);
  CHECK(c.transport.streams == 256);
  CHECK(c.transport.local.size() == 1);
  CHECK(c.control.socket == "/run/sctptund/tun0.sock");
}

TEST_CASE("config: [transport] max_window and the retransmission timeouts of each transport") {
  control::Config c = control::parse_config("", "empty.toml");
  CHECK(c.transport.max_window == 16u << 20);
  control::RtoBounds udp = control::rto_bounds(c.transport, true);
  CHECK(udp.min_ms == 1000);
  CHECK(udp.initial_ms == 1000);
  CHECK(udp.max_ms == 2000);
  control::RtoBounds kernel = control::rto_bounds(c.transport, false);
  CHECK(kernel.min_ms == 100);
  CHECK(kernel.initial_ms == 500);
  CHECK(kernel.max_ms == 1000);

  c = control::parse_config("[transport]\nmax_window = 67108864\nrto_min_ms = 300\n", "t.toml");
  CHECK(c.transport.max_window == 64u << 20);
  CHECK(control::rto_bounds(c.transport, true).min_ms == 300);
  CHECK(control::rto_bounds(c.transport, true).initial_ms == 1000);
  CHECK(control::rto_bounds(c.transport, false).min_ms == 300);
  CHECK(control::rto_bounds(c.transport, false).initial_ms == 500);

  CHECK(contains(error_of("[transport]\nmax_window = 1000\n"), "max_window"));
  CHECK(contains(error_of("[transport]\nmax_window = 1073741824\n"), "max_window"));
  // rto_max_ms = 500 is below the udp transport's default minimum; fine for the kernel alone.
  std::string e = error_of("[transport]\nrto_max_ms = 500\n");
  CHECK(contains(e, "udp transport's defaults 1000/1000/500"));
  CHECK(contains(e, "test.toml:2: [transport] rto_max_ms"));
  CHECK_NOTHROW(
      control::parse_config("[transport]\nkind = \"kernel\"\nrto_max_ms = 500\n", "k.toml"));
  CHECK(contains(error_of("[transport]\nkind = \"auto\"\nrto_max_ms = 500\n"), "udp transport"));
  CHECK(
      contains(error_of("[transport]\nrto_min_ms = 50\nrto_initial_ms = 40\n"), "rto_initial_ms"));
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
  CHECK(contains(e, "must be \"udp\""));
  e = error_of("[transport]\nkind = \"udp\"\nudp_encapsulation = false\n");
  CHECK(contains(e, "[transport] udp_encapsulation: kind = \"udp\" is always encapsulated"));
  for (const char* kind : {"kernel", "auto", "udp"}) {
    control::Config k =
        control::parse_config(std::string("[transport]\nkind = \"") + kind + "\"\n", "test.toml");
    CHECK(k.transport.kind == kind);
    CHECK_FALSE(k.transport.udp_encapsulation);
  }
  control::Config encaps =
      control::parse_config("[transport]\nkind = \"kernel\"\nudp_encapsulation = true\n", "t.toml");
  CHECK(encaps.transport.udp_encapsulation);
  CHECK_FALSE(control::restart_needed(
                  encaps, control::parse_config("[transport]\nkind = \"kernel\"\n", "t.toml"))
                  .empty());

  e = error_of("[transport]\nlocal = [\"192.0.2.300\"]\n");
  CHECK(contains(e, "'192.0.2.300' is not an IPv4 or IPv6 address"));

  e = error_of("[[peer]]\nname = \"b\"\nencryption = \"none\"\n");
  CHECK(contains(e, "no remote and no key_file"));
  e = error_of("[[peer]]\nname = \"b\"\nremote = []\nencryption = \"none\"\n");
  CHECK(contains(e, "needs at least one address (or leave remote out to learn it)"));
  e = error_of("[transport]\nkeepalive_s = 0\n");
  CHECK(contains(e, "[transport] keepalive_s: must be between 1 and 3600"));
  e = error_of("[transport]\npath_mtu = 1000\n");
  CHECK(contains(e, "[transport] path_mtu: must be between 1280 and 9216"));
  e = error_of("[transport]\nheartbeat_ms = 5\n");
  CHECK(contains(e, "[transport] heartbeat_ms: must be between 100"));
  control::Config timing = control::parse_config(
      "[transport]\nheartbeat_ms = 30000\nkeepalive_s = 2\npath_mtu = 1400\n", "t.toml");
  CHECK(timing.transport.heartbeat_ms == 30000);
  CHECK(timing.transport.keepalive_s == 2);
  CHECK(timing.transport.path_mtu == 1400);
  CHECK_FALSE(control::restart_needed(timing, control::parse_config("", "t.toml")).empty());

  e = error_of(
      "[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\nencryption = \"none\"\n[[peer]]\nname = "
      "\"b\"\nremote = "
      "[\"192.0.2.3\"]\nencryption = \"none\"\n");
  CHECK(contains(e, "test.toml:5:"));
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
  control::Config c = control::parse_config(
      "[[peer]]\nname = \"idle\"\nremote = [\"192.0.2.9\"]\nencryption = \"none\"\n", "t.toml");
  REQUIRE(c.warnings.size() == 2);
  CHECK(contains(c.warnings[0], "'idle' is used by no [[policy]] rule"));
}

TEST_CASE("config: a missing file is an error that names it") {
  CHECK_THROWS_WITH_AS(control::load_config("/nonexistent/sctptund.toml"),
                       "/nonexistent/sctptund.toml: cannot open config file", control::ConfigError);
}

TEST_CASE("config: rules with protocol and ports, bypass, routes, default") {
  control::Config c = control::parse_config(R"(
[tun]
default = "bypass"
fwmark = 77
bypass_table = 1077
[[peer]]
name = "b"
remote = ["192.0.2.2"]
encryption = "none"
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
  control::Config a = control::parse_config(kValid, "a.toml");
  control::Config b = a;
  b.rules.pop_back();
  b.routes.push_back({*policy::Prefix::parse("10.9.0.0/16")});
  b.tun.default_action = policy::Action::bypass;
  CHECK(control::restart_needed(a, b).empty());
  b.peers[0].remote = {*base::Endpoint::parse("192.0.2.9", 9899)};
  b.transport.port = 1;
  b.tun.mtu = 1300;
  auto needed = control::restart_needed(a, b);
  CHECK(needed.size() == 3);
  b = a;
  b.transport.max_window = 1 << 20;
  CHECK(control::restart_needed(a, b).size() == 1);
}

TEST_CASE("config: [[peer]] pool: associations kept ready, 1..16, default 2") {
  control::Config c = control::parse_config(kValid, "test.toml");
  REQUIRE(c.peers.size() == 1);
  CHECK(c.peers[0].pool == 2);
  std::string text = kValid;
  std::string with_pool = text;
  with_pool.replace(with_pool.find("port = 9899\n\n[[policy]]"), 11, "port = 9899\npool = 4");
  c = control::parse_config(with_pool, "test.toml");
  CHECK(c.peers[0].pool == 4);
  control::Config base = control::parse_config(kValid, "test.toml");
  CHECK_FALSE(control::restart_needed(base, c).empty());  // a pool change needs a restart
  for (const char* bad : {"pool = 0", "pool = 17", "pool = \"two\""}) {
    std::string t = text;
    t.replace(t.find("port = 9899\n\n[[policy]]"), 11, std::string("port = 9899\n") + bad);
    std::string e = error_of(t);
    INFO(e);
    CHECK(contains(e, "[peer] pool"));
  }
}

namespace {
// A key file in a fresh temporary folder, mode 0600; removed with the folder at destruction.
struct KeyDir {
  std::string dir;
  KeyDir() {
    char tmpl[] = "/tmp/sctptund-keytest-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~KeyDir() { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
};

std::string with_peer_keys(const std::string& lines) {
  std::string text = kValid;
  text.replace(text.find("encryption = \"none\"\n"), 20, lines);
  return text;
}
}  // namespace

TEST_CASE("config: [[peer]] key_file and encryption") {
  REQUIRE(crypto::init());
  KeyDir keys;
  std::string key = crypto::generate_key();
  CHECK(key.size() == 44);
  keys.write("b.key", key + "\n");

  // Relative to the config file's folder; the key is read when the config is.
  control::Config c =
      control::parse_config(with_peer_keys("key_file = \"b.key\"\n"), keys.dir + "/gw.toml");
  REQUIRE(c.peers[0].key.has_value());
  CHECK(c.peers[0].seal);
  std::string why;
  CHECK(*c.peers[0].key == *crypto::parse_key(key, why));
  control::Config none = control::parse_config(
      with_peer_keys("key_file = \"" + keys.dir + "/b.key\"\nencryption = \"none\"\n"),
      "elsewhere.toml");
  CHECK(none.peers[0].key == c.peers[0].key);
  CHECK_FALSE(none.peers[0].seal);
  CHECK(c.warnings.empty());
  REQUIRE(none.warnings.size() == 1);
  CHECK(contains(none.warnings[0],
                 "encryption = \"none\": authenticated, but its traffic crosses the WAN in clear"));
  CHECK_FALSE(control::restart_needed(c, none).empty());  // encryption changes need a restart

  // encryption = "aead" is the default and needs a key.
  std::string e = error_of(with_peer_keys(""));
  CHECK(contains(e, "test.toml:"));
  CHECK(contains(e, "needs key_file"));
  CHECK(contains(e, "sctptund genkey"));
  e = error_of(with_peer_keys("encryption = \"rot13\"\n"));
  CHECK(contains(e, "[peer] encryption: must be \"aead\" or \"none\""));

  auto key_error = [&](const std::string& file, const std::string& text, mode_t mode) {
    keys.write(file, text, mode);
    return error_of(with_peer_keys("key_file = \"" + keys.dir + "/" + file + "\"\n"));
  };
  e = key_error("open.key", key, 0644);
  CHECK(contains(e, "[peer] key_file: key file"));
  CHECK(contains(e, "mode 0644): chmod 600 it"));
  CHECK(contains(key_error("short.key", "c2hvcnQ=", 0600), "the key is 5 bytes, it must be 32"));
  CHECK(contains(key_error("junk.key", "not base64 at all!", 0600), "not a base64 key"));
  CHECK(contains(key_error("empty.key", "", 0600), "must be 32"));
  e = error_of(with_peer_keys("key_file = \"" + keys.dir + "/missing.key\"\n"));
  CHECK(contains(e, "cannot read key file"));
  CHECK(contains(e, "No such file"));
  // A symbolic link to a key file, a key file of another user, a directory, a huge file.
  std::string real = keys.write("real.key", key, 0600);
  REQUIRE(::symlink(real.c_str(), (keys.dir + "/link.key").c_str()) == 0);
  e = error_of(with_peer_keys("key_file = \"" + keys.dir + "/link.key\"\n"));
  CHECK(contains(e, "is a symbolic link"));
  REQUIRE(::geteuid() == 0);  // chown to another user: unit_tests run as root (see README)
  std::string other = keys.write("other.key", key, 0600);
  REQUIRE(::chown(other.c_str(), 4242, 4242) == 0);
  e = error_of(with_peer_keys("key_file = \"" + other + "\"\n"));
  CHECK(contains(e, "is owned by uid 4242, neither root nor the daemon's user"));
  REQUIRE(::mkdir((keys.dir + "/dir.key").c_str(), 0700) == 0);
  CHECK(contains(error_of(with_peer_keys("key_file = \"" + keys.dir + "/dir.key\"\n")),
                 "is not a regular file"));
  CHECK(contains(key_error("big.key", std::string(5000, 'A'), 0600), "is 5000 bytes"));
  // show and reload need only the control socket: they do not open the key files.
  control::Config skipped =
      control::parse_config(with_peer_keys("key_file = \"" + keys.dir + "/missing.key\"\n"),
                            "test.toml", control::Keys::skip);
  CHECK_FALSE(skipped.peers[0].key.has_value());
  CHECK(skipped.peers[0].key_file == keys.dir + "/missing.key");
}

TEST_CASE("config: a peer without remote is learned: it needs a key and the udp transport") {
  REQUIRE(crypto::init());
  KeyDir keys;
  keys.write("a.key", crypto::generate_key() + "\n");
  keys.write("c.key", crypto::generate_key() + "\n");
  auto peer = [&](const std::string& name, const std::string& key) {
    return "[[peer]]\nname = \"" + name + "\"\nkey_file = \"" + keys.dir + "/" + key + "\"\n";
  };
  control::Config c = control::parse_config(peer("a", "a.key"), "t.toml");
  REQUIRE(c.peers.size() == 1);
  CHECK(c.peers[0].remote.empty());
  // No local given: both wildcard addresses, since the peer may come from either family.
  REQUIRE(c.transport.local.size() == 2);
  CHECK(c.transport.local[0].to_string() == "0.0.0.0:9899");
  CHECK(c.transport.local[1].to_string() == "[::]:9899");
  // Given locals are kept as they are.
  control::Config given = control::parse_config(
      "[transport]\nlocal = [\"192.0.2.1\"]\n" + peer("a", "a.key"), "t.toml");
  CHECK(given.transport.local.size() == 1);
  // Peers with configured IPv4 remotes only: IPv4 only, as before.
  control::Config v4 = control::parse_config(
      "[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\nencryption = \"none\"\n", "t.toml");
  CHECK(v4.transport.local.size() == 1);
  // Two learned peers: told apart by their keys only, so the keys must differ.
  CHECK_NOTHROW(control::parse_config(peer("a", "a.key") + peer("c", "c.key"), "t.toml"));
  std::string e = error_of(peer("a", "a.key") + peer("c", "a.key"));
  CHECK(contains(e, "have no remote and the same key"));
  e = error_of("[transport]\nkind = \"kernel\"\n" + peer("a", "a.key"));
  CHECK(contains(e, "has no remote: learning a peer's address needs [transport] kind = \"udp\""));
}

TEST_CASE("config: [tun] gro, on by default, a boolean") {
  CHECK(control::parse_config("", "t.toml").tun.gro);
  CHECK_FALSE(control::parse_config("[tun]\ngro = false\n", "t.toml").tun.gro);
  CHECK(contains(error_of("[tun]\ngro = 1\n"), "gro"));
}

TEST_CASE("config: [[peer]] allowed_sources: prefixes the peer may send from, besides its rules") {
  const std::string base = kValid;
  control::Config plain = control::parse_config(base, "t.toml");
  CHECK(plain.peers[0].allowed_sources.empty());
  std::string with = base;
  with.replace(with.find("port = 9899\n\n[[policy]]"), 11,
               "port = 9899\nallowed_sources = [\"10.9.0.0/16\", \"fd00:9::/48\", \"10.255.0.2\"]");
  control::Config c = control::parse_config(with, "t.toml");
  REQUIRE(c.peers[0].allowed_sources.size() == 3);
  CHECK(c.peers[0].allowed_sources[0] == *policy::Prefix::parse("10.9.0.0/16"));
  CHECK(c.peers[0].allowed_sources[1] == *policy::Prefix::parse("fd00:9::/48"));
  CHECK(c.peers[0].allowed_sources[2] == *policy::Prefix::parse("10.255.0.2/32"));
  // The policy: the tunnel rules' prefixes and the listed ones; nothing else.
  auto allowed = [](const policy::Policy& p, const char* address) {
    auto a = *policy::Prefix::parse(address);
    return p.source_allowed(0, static_cast<std::uint8_t>(a.family()), a.bytes().data());
  };
  policy::Policy p = control::make_policy(c);
  for (const char* yes : {"10.2.3.4", "fd02::5", "10.9.1.1", "fd00:9:0:1::1", "10.255.0.2"})
    CHECK_MESSAGE(allowed(p, yes), yes);
  for (const char* no : {"10.1.0.1", "fd01::1", "10.255.0.1", "192.0.2.9"})
    CHECK_FALSE_MESSAGE(allowed(p, no), no);
  CHECK_FALSE(allowed(control::make_policy(plain), "10.9.1.1"));
  // A reload applies a change.
  CHECK(control::restart_needed(plain, c).empty());

  auto e = error_of(
      "[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\nencryption = \"none\"\n"
      "allowed_sources = [\"10.9.0.0/16\",\n  \"10.9.0.0/33\"]\n");
  CHECK(contains(e, "test.toml:6: [peer] allowed_sources: '10.9.0.0/33' is not a prefix"));
  for (const char* bad : {"10.9.0/16", "fd00:9::/129", "10.9.0.0/", "host.example", "",
                          " 10.9.0.0/16", "fd00::9::1/64", "10.09.0.0/16"}) {
    CAPTURE(bad);
    e = error_of(std::string("[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\n"
                             "encryption = \"none\"\nallowed_sources = [\"") +
                 bad + "\"]\n");
    CHECK(contains(e, "[peer] allowed_sources: '" + std::string(bad) + "' is not a prefix"));
  }
  e = error_of(
      "[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\nencryption = \"none\"\n"
      "allowed_sources = \"10.9.0.0/16\"\n");
  CHECK(contains(e, "[peer] allowed_sources: must be an array of strings"));
}

TEST_CASE("config: [flows] max_per_host: one inside host's share, default max / 8") {
  control::Config c = control::parse_config("", "empty.toml");
  CHECK(c.flows.max_per_host == 262144 / 8);
  c = control::parse_config("[flows]\nmax_per_host = 100\nmax = 1000\n", "t.toml");
  CHECK(c.flows.max_per_host == 100);
  c = control::parse_config("[flows]\nmax = 20\n", "t.toml");
  CHECK(c.flows.max_per_host == 2);
  c = control::parse_config("[flows]\nmax = 5\n", "t.toml");
  CHECK(c.flows.max_per_host == 1);
  std::string e = error_of("[flows]\nmax = 1000\nmax_per_host = 1001\n");
  CHECK(contains(e, "test.toml:3: [flows] max_per_host: must not exceed max (1000)"));
  e = error_of("[flows]\nmax_per_host = 0\n");
  CHECK(contains(e, "[flows] max_per_host: must be between 1 and 16777216, not 0"));

  control::Config a = control::parse_config(kValid, "a.toml");
  control::Config b = a;
  b.flows.max_per_host = 7;
  CHECK(control::restart_needed(a, b) ==
        std::vector<std::string>{"[flows] max / max_per_peer / max_per_host"});
}

TEST_CASE("config: [transport] multipath: failover by default, aggregate for kind udp only") {
  CHECK(control::parse_config(kValid, "t.toml").transport.multipath == "failover");
  control::Config c = control::parse_config("[transport]\nmultipath = \"aggregate\"\n", "t.toml");
  CHECK(c.transport.multipath == "aggregate");
  std::string e = error_of("[transport]\nmultipath = \"bond\"\n");
  CHECK(contains(e, "test.toml:2"));
  CHECK(contains(e, "[transport] multipath: must be \"failover\""));
  e = error_of("[transport]\nkind = \"kernel\"\nmultipath = \"aggregate\"\n");
  CHECK(contains(e, "\"aggregate\" needs kind = \"udp\""));
  CHECK(contains(error_of("[transport]\nkind = \"auto\"\nmultipath = \"aggregate\"\n"),
                 "needs kind = \"udp\""));
  control::Config b = c;
  b.transport.multipath = "failover";
  CHECK(control::restart_needed(c, b).size() == 1);
}

TEST_CASE("config: [[policy]] redundant: tunnel rules of the udp transport only, off by default") {
  const std::string peer =
      "[[peer]]\nname = \"b\"\nremote = [\"192.0.2.2\"]\nencryption = \"none\"\n";
  const std::string rule = "[[policy]]\nprefix = \"10.2.0.0/16\"\nprotocol = \"icmp\"\n";
  control::Config c = control::parse_config(
      peer + rule + "action = \"tunnel\"\npeer = \"b\"\nredundant = true\n" +
          "[[policy]]\nprefix = \"10.2.0.0/16\"\naction = \"tunnel\"\npeer = \"b\"\n",
      "t.toml");
  REQUIRE(c.rules.size() == 2);
  CHECK(c.rules[0].redundant);
  CHECK_FALSE(c.rules[1].redundant);
  std::string e = error_of(rule + "action = \"drop\"\nredundant = true\n");
  CHECK(contains(e, "test.toml:5: [policy] redundant: only an action \"tunnel\" can be redundant"));
  e = error_of(peer + rule + "action = \"tunnel\"\npeer = \"b\"\nredundant = \"yes\"\n");
  CHECK(contains(e, "test.toml:10: [policy] redundant: must be true or false"));
  e = error_of("[transport]\nkind = \"kernel\"\n" + peer + rule +
               "action = \"tunnel\"\npeer = \"b\"\nredundant = true\n");
  CHECK(contains(e, "test.toml:12: [policy] redundant: needs [transport] kind = \"udp\""));
  // A rule that says redundant = false is an ordinary one, whatever the transport.
  CHECK_FALSE(control::parse_config("[transport]\nkind = \"kernel\"\n" + peer + rule +
                                        "action = \"tunnel\"\npeer = \"b\"\nredundant = false\n",
                                    "t.toml")
                  .rules[0]
                  .redundant);
}

TEST_CASE("config: [transport] stripe: on by default with aggregate, refused without it") {
  CHECK(
      control::parse_config("[transport]\nmultipath = \"aggregate\"\n", "t.toml").transport.stripe);
  control::Config c =
      control::parse_config("[transport]\nmultipath = \"aggregate\"\nstripe = false\n", "t.toml");
  CHECK_FALSE(c.transport.stripe);
  std::string e = error_of("[transport]\nstripe = true\n");
  CHECK(contains(e, "test.toml:2: [transport] stripe: needs multipath = \"aggregate\""));
  control::Config b = c;
  b.transport.stripe = true;
  CHECK(control::restart_needed(c, b).size() == 1);
}
