#include "src/control/config.hpp"

#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "src/control/key_file.hpp"

namespace control {

RtoBounds rto_bounds(const TransportConfig& t, bool usrsctp) {
  RtoBounds d = usrsctp ? RtoBounds{1000, 1000, 2000} : RtoBounds{100, 500, 1000};
  return {t.rto_min_ms.value_or(d.min_ms), t.rto_initial_ms.value_or(d.initial_ms),
          t.rto_max_ms.value_or(d.max_ms)};
}

namespace {

// Reads one table, remembering where each value came from so errors can name file and line.
class Section {
 public:
  Section(const std::string& file, const toml::table& table, std::string name)
      : file_(file), table_(table), name_(std::move(name)) {}

  [[noreturn]] void fail(const toml::source_region& where, std::string_view key,
                         const std::string& message) const {
    std::ostringstream out;
    out << file_ << ":" << where.begin.line << ": [" << name_ << "]";
    if (!key.empty()) out << " " << key;
    out << ": " << message;
    throw ConfigError(out.str());
  }
  [[noreturn]] void fail_section(const std::string& message) const {
    fail(table_.source(), "", message);
  }

  void allow_only(std::initializer_list<std::string_view> keys) const {
    for (auto&& [key, node] : table_) {
      if (std::find(keys.begin(), keys.end(), key.str()) == keys.end())
        fail(key.source(), key.str(), "unknown key");
    }
  }

  bool has(std::string_view key) const { return table_.contains(key); }

  std::optional<std::string> string(std::string_view key) const {
    const toml::node* node = table_.get(key);
    if (!node) return std::nullopt;
    if (!node->is_string()) fail(node->source(), key, "must be a string");
    return node->as_string()->get();
  }

  std::string required_string(std::string_view key) const {
    auto value = string(key);
    if (!value) fail_section("missing required key '" + std::string(key) + "'");
    return *value;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min,
                                      std::int64_t max) const {
    const toml::node* node = table_.get(key);
    if (!node) return std::nullopt;
    if (!node->is_integer()) fail(node->source(), key, "must be an integer");
    std::int64_t value = node->as_integer()->get();
    if (value < min || value > max)
      fail(node->source(), key,
           "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", not " +
               std::to_string(value));
    return value;
  }

  std::optional<bool> boolean(std::string_view key) const {
    const toml::node* node = table_.get(key);
    if (!node) return std::nullopt;
    if (!node->is_boolean()) fail(node->source(), key, "must be true or false");
    return node->as_boolean()->get();
  }

  // An array of strings; each element's line is passed to check so it can fail precisely.
  template <class Check>
  void strings(std::string_view key, Check check) const {
    const toml::node* node = table_.get(key);
    if (!node) return;
    if (!node->is_array()) fail(node->source(), key, "must be an array of strings");
    for (const toml::node& element : *node->as_array()) {
      if (!element.is_string()) fail(element.source(), key, "must be an array of strings");
      check(element.as_string()->get(), element.source());
    }
  }

  const toml::source_region& where(std::string_view key) const {
    const toml::node* node = table_.get(key);
    return node ? node->source() : table_.source();
  }

 private:
  const std::string& file_;
  const toml::table& table_;
  std::string name_;
};

const toml::table* sub_table(const std::string& file, const toml::table& root,
                             std::string_view key) {
  const toml::node* node = root.get(key);
  if (!node) return nullptr;
  if (!node->is_table())
    throw ConfigError(file + ":" + std::to_string(node->source().begin.line) + ": '" +
                      std::string(key) + "' must be a table ([" + std::string(key) + "])");
  return node->as_table();
}

std::vector<const toml::table*> table_array(const std::string& file, const toml::table& root,
                                            std::string_view key) {
  std::vector<const toml::table*> out;
  const toml::node* node = root.get(key);
  if (!node) return out;
  const toml::array* array = node->as_array();
  if (!array || !array->is_array_of_tables())
    throw ConfigError(file + ":" + std::to_string(node->source().begin.line) + ": '" +
                      std::string(key) + "' must be an array of tables ([[" + std::string(key) +
                      "]])");
  for (const toml::node& element : *array) out.push_back(element.as_table());
  return out;
}

bool valid_name(std::string_view name, std::size_t max_len) {
  if (name.empty() || name.size() > max_len) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

void read_tun(const std::string& file, const toml::table& table, TunConfig& tun) {
  Section s(file, table, "tun");
  s.allow_only({"name", "mtu", "addresses", "default", "fwmark", "bypass_table", "offload", "gro"});
  if (auto name = s.string("name")) {
    if (!valid_name(*name, 15))
      s.fail(s.where("name"), "name",
             "'" + *name + "' is not a valid interface name (1-15 of a-z A-Z 0-9 - _ .)");
    tun.name = *name;
  }
  if (auto mtu = s.integer("mtu", 576, 65535)) tun.mtu = static_cast<int>(*mtu);
  s.strings("addresses", [&](const std::string& text, const toml::source_region& where) {
    if (!base::is_interface_address(text))
      s.fail(where, "addresses",
             "'" + text + "' is not an address with prefix length (10.0.0.1/30, fd00::1/64)");
    tun.addresses.push_back({text});
  });
  if (auto action = s.string("default")) {
    if (*action == "drop") {
      tun.default_action = policy::Action::drop;
    } else if (*action == "bypass") {
      tun.default_action = policy::Action::bypass;
    } else {
      s.fail(s.where("default"), "default", "'" + *action + "' is not one of: drop, bypass");
    }
  }
  if (auto offload = s.boolean("offload")) tun.offload = *offload;
  if (auto gro = s.boolean("gro")) tun.gro = *gro;
  if (auto mark = s.integer("fwmark", 1, 0xffffffffLL))
    tun.fwmark = static_cast<std::uint32_t>(*mark);
  if (auto number = s.integer("bypass_table", 1, 0xffffffffLL)) {
    if (*number >= 253 && *number <= 255)
      s.fail(s.where("bypass_table"), "bypass_table",
             "253, 254 and 255 are the kernel's default, main and local tables");
    tun.bypass_table = static_cast<std::uint32_t>(*number);
  }
}

void read_transport(const std::string& file, const toml::table& table, TransportConfig& transport) {
  Section s(file, table, "transport");
  s.allow_only({"kind", "local", "port", "streams", "probe_interval_ms", "failover_ms",
                "rto_min_ms", "rto_max_ms", "rto_initial_ms", "udp_encapsulation", "heartbeat_ms",
                "keepalive_s", "path_mtu", "max_window", "fec_max_overhead", "congestion_control",
                "window_cap", "multipath", "stripe"});
  if (auto cap = s.boolean("window_cap")) transport.window_cap = *cap;
  if (auto v = s.integer("fec_max_overhead", 0, 50))
    transport.fec_max_overhead = static_cast<std::uint32_t>(*v);
  if (auto cc = s.string("congestion_control")) {
    if (*cc != "reno" && *cc != "htcp" && *cc != "hstcp")
      s.fail(s.where("congestion_control"), "congestion_control",
             "must be \"reno\", \"htcp\" or \"hstcp\", not '" + *cc + "'");
    transport.congestion_control = *cc;
  }
  if (auto v = s.integer("max_window", 1 << 20, 256 << 20))
    transport.max_window = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("heartbeat_ms", 100, 3600000))
    transport.heartbeat_ms = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("keepalive_s", 1, 3600))
    transport.keepalive_s = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("path_mtu", 1280, 9216)) transport.path_mtu = static_cast<int>(*v);
  if (auto v = s.integer("probe_interval_ms", 10, 60000))
    transport.probe_interval_ms = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("failover_ms", 50, 600000))
    transport.failover_ms = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("rto_min_ms", 10, 60000))
    transport.rto_min_ms = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("rto_max_ms", 10, 600000))
    transport.rto_max_ms = static_cast<std::uint32_t>(*v);
  if (auto v = s.integer("rto_initial_ms", 10, 600000))
    transport.rto_initial_ms = static_cast<std::uint32_t>(*v);
  if (auto kind = s.string("kind")) {
    if (*kind != "udp" && *kind != "kernel" && *kind != "auto")
      s.fail(s.where("kind"), "kind",
             "must be \"udp\" (userspace SCTP over UDP, RFC 6951), \"kernel\" (the kernel's SCTP) "
             "or \"auto\" "
             "(kernel where the kernel has SCTP, else udp), not '" +
                 *kind + "'");
    transport.kind = *kind;
  }
  // The bounds must be ordered with the defaults of every transport the kind may choose.
  for (bool usrsctp : {true, false}) {
    if ((usrsctp && transport.kind == "kernel") || (!usrsctp && transport.kind == "udp")) continue;
    RtoBounds rto = rto_bounds(transport, usrsctp);
    std::string with = std::string(" (with the ") + (usrsctp ? "udp" : "kernel") +
                       " transport's defaults " + std::to_string(rto.min_ms) + "/" +
                       std::to_string(rto.initial_ms) + "/" + std::to_string(rto.max_ms) +
                       " ms for those not set)";
    if (rto.min_ms > rto.max_ms)
      s.fail(s.where(transport.rto_min_ms ? "rto_min_ms" : "rto_max_ms"),
             transport.rto_min_ms ? "rto_min_ms" : "rto_max_ms",
             "rto_min_ms must not be larger than rto_max_ms" + with);
    if (rto.initial_ms < rto.min_ms || rto.initial_ms > rto.max_ms) {
      const char* key = transport.rto_initial_ms ? "rto_initial_ms"
                        : transport.rto_min_ms   ? "rto_min_ms"
                                                 : "rto_max_ms";
      s.fail(s.where(key), key, "rto_initial_ms must lie between rto_min_ms and rto_max_ms" + with);
    }
  }
  if (auto mode = s.string("multipath")) {
    if (*mode != "failover" && *mode != "aggregate")
      s.fail(s.where("multipath"), "multipath",
             "must be \"failover\" (one path carries the traffic) or \"aggregate\" (the "
             "associations spread over all live paths), not '" +
                 *mode + "'");
    if (*mode == "aggregate" && transport.kind != "udp")
      s.fail(s.where("multipath"), "multipath",
             "\"aggregate\" needs kind = \"udp\": the kernel's SCTP sends an association's "
             "data on one path at a time");
    transport.multipath = *mode;
  }
  if (auto stripe = s.boolean("stripe")) {
    if (*stripe && transport.multipath != "aggregate")
      s.fail(s.where("stripe"), "stripe", "needs multipath = \"aggregate\"");
    transport.stripe = *stripe;
  }
  if (auto encaps = s.boolean("udp_encapsulation")) {
    if (transport.kind == "udp" && !*encaps)
      s.fail(s.where("udp_encapsulation"), "udp_encapsulation",
             "kind = \"udp\" is always encapsulated in UDP; native SCTP needs kind = \"kernel\"");
    transport.udp_encapsulation = *encaps;
  }
  if (auto port = s.integer("port", 1, 65535)) transport.port = static_cast<std::uint16_t>(*port);
  if (auto streams = s.integer("streams", 2, 65535))
    transport.streams = static_cast<std::uint16_t>(*streams);
  s.strings("local", [&](const std::string& text, const toml::source_region& where) {
    auto ep = base::Endpoint::parse(text, transport.port);
    if (!ep) s.fail(where, "local", "'" + text + "' is not an IPv4 or IPv6 address");
    transport.local.push_back(*ep);
  });
  if (transport.local.empty()) {
    transport.local.push_back(*base::Endpoint::parse("0.0.0.0", transport.port));
    transport.local_default = true;
  }
}

// A path from a config file, relative ones taken from the config file's folder.
std::string resolve_beside(const std::string& config_file, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  std::size_t slash = config_file.rfind('/');
  return slash == std::string::npos ? path : config_file.substr(0, slash + 1) + path;
}

PeerConfig read_peer(const std::string& file, const toml::table& table, Keys keys) {
  Section s(file, table, "peer");
  s.allow_only({"name", "remote", "port", "compression", "pool", "key_file", "encryption", "fec",
                "allowed_sources"});
  PeerConfig peer;
  peer.name = s.required_string("name");
  if (!valid_name(peer.name, 64))
    s.fail(s.where("name"), "name",
           "'" + peer.name + "' is not a valid peer name (1-64 of a-z A-Z 0-9 - _ .)");
  if (auto port = s.integer("port", 1, 65535)) peer.port = static_cast<std::uint16_t>(*port);
  if (auto compression = s.boolean("compression")) peer.compression = *compression;
  if (auto fec = s.boolean("fec")) peer.fec = *fec;
  if (auto pool = s.integer("pool", 1, 16)) peer.pool = static_cast<std::uint16_t>(*pool);
  s.strings("remote", [&](const std::string& text, const toml::source_region& where) {
    auto ep = base::Endpoint::parse(text, peer.port);
    if (!ep) s.fail(where, "remote", "'" + text + "' is not an IPv4 or IPv6 address");
    peer.remote.push_back(*ep);
  });
  s.strings("allowed_sources", [&](const std::string& text, const toml::source_region& where) {
    auto prefix = policy::Prefix::parse(text);
    if (!prefix)
      s.fail(where, "allowed_sources",
             "'" + text + "' is not a prefix (10.9.0.0/16, fd00:9::/48, or an address)");
    peer.allowed_sources.push_back(*prefix);
  });
  if (s.has("remote") && peer.remote.empty())
    s.fail(s.where("remote"), "remote",
           "needs at least one address (or leave remote out to learn it)");
  if (auto encryption = s.string("encryption")) {
    if (*encryption != "aead" && *encryption != "none")
      s.fail(s.where("encryption"), "encryption",
             "must be \"aead\" or \"none\", not '" + *encryption + "'");
    peer.seal = *encryption == "aead";
  }
  if (auto key_file = s.string("key_file")) {
    peer.key_file = *key_file;
    if (keys == Keys::read) {
      std::string error;
      peer.key = read_key_file(resolve_beside(file, *key_file), error);
      if (!peer.key) s.fail(s.where("key_file"), "key_file", error);
    }
  } else if (peer.remote.empty()) {
    s.fail_section("peer '" + peer.name +
                   "': no remote and no key_file: a peer's address is learned only from traffic "
                   "authenticated with its key; give remote or key_file");
  } else if (peer.seal) {
    s.fail_section("peer '" + peer.name +
                   "': encryption = \"aead\" (the default) needs key_file: make a key with "
                   "`sctptund genkey`, give "
                   "both gateways the same one, or set encryption = \"none\" (anyone who can reach "
                   "the port can "
                   "then send into the tunnel)");
  }
  return peer;
}

std::optional<std::uint8_t> parse_protocol(const std::string& text) {
  if (text == "tcp") return IPPROTO_TCP;
  if (text == "udp") return IPPROTO_UDP;
  if (text == "icmp") return IPPROTO_ICMP;
  if (text == "icmpv6") return IPPROTO_ICMPV6;
  if (text == "sctp") return IPPROTO_SCTP;
  if (text.empty() || text.size() > 3 || !std::all_of(text.begin(), text.end(), ::isdigit))
    return std::nullopt;
  int number = std::stoi(text);
  if (number > 255) return std::nullopt;
  return static_cast<std::uint8_t>(number);
}

policy::Rule read_rule(const std::string& file, const toml::table& table,
                       const std::vector<PeerConfig>& peers, const TransportConfig& transport) {
  Section s(file, table, "policy");
  s.allow_only({"prefix", "protocol", "ports", "action", "peer", "redundant"});
  policy::Rule rule;
  std::string prefix = s.required_string("prefix");
  auto parsed = policy::Prefix::parse(prefix);
  if (!parsed)
    s.fail(s.where("prefix"), "prefix",
           "'" + prefix + "' is not a prefix (10.2.0.0/16, fd02::/64)");
  rule.prefix = *parsed;
  if (auto protocol = s.string("protocol")) {
    rule.protocol = parse_protocol(*protocol);
    if (!rule.protocol)
      s.fail(s.where("protocol"), "protocol",
             "'" + *protocol + "' is not one of: tcp, udp, icmp, icmpv6, sctp, 0-255");
  }
  if (auto ports = s.string("ports")) {
    bool has_ports =
        rule.protocol && (*rule.protocol == IPPROTO_TCP || *rule.protocol == IPPROTO_UDP ||
                          *rule.protocol == IPPROTO_SCTP);
    if (!has_ports)
      s.fail(s.where("ports"), "ports", "needs protocol = \"tcp\", \"udp\" or \"sctp\"");
    auto ranges = policy::parse_ports(*ports);
    if (!ranges)
      s.fail(s.where("ports"), "ports", "'" + *ports + "' is not a port list (80,443,8000-8100)");
    rule.ports = *ranges;
  }
  std::string action = s.required_string("action");
  if (action == "tunnel") {
    rule.action = policy::Action::tunnel;
  } else if (action == "bypass") {
    rule.action = policy::Action::bypass;
  } else if (action == "drop") {
    rule.action = policy::Action::drop;
  } else {
    s.fail(s.where("action"), "action", "'" + action + "' is not one of: tunnel, bypass, drop");
  }
  auto peer = s.string("peer");
  if (rule.action == policy::Action::tunnel) {
    if (!peer) s.fail_section("action \"tunnel\" needs a 'peer'");
    auto it = std::find_if(peers.begin(), peers.end(),
                           [&](const PeerConfig& p) { return p.name == *peer; });
    if (it == peers.end()) s.fail(s.where("peer"), "peer", "no [[peer]] is named '" + *peer + "'");
    rule.peer = static_cast<std::uint32_t>(it - peers.begin());
  } else if (peer) {
    s.fail(s.where("peer"), "peer", "only an action \"tunnel\" takes a peer");
  }
  if (auto redundant = s.boolean("redundant")) {
    if (*redundant && rule.action != policy::Action::tunnel)
      s.fail(s.where("redundant"), "redundant", "only an action \"tunnel\" can be redundant");
    if (*redundant && transport.kind != "udp")
      s.fail(s.where("redundant"), "redundant",
             "needs [transport] kind = \"udp\": the kernel's SCTP chooses the path of every "
             "packet itself");
    rule.redundant = *redundant;
  }
  return rule;
}

RouteConfig read_route(const std::string& file, const toml::table& table) {
  Section s(file, table, "route");
  s.allow_only({"prefix"});
  std::string prefix = s.required_string("prefix");
  auto parsed = policy::Prefix::parse(prefix);
  if (!parsed)
    s.fail(s.where("prefix"), "prefix",
           "'" + prefix + "' is not a prefix (10.2.0.0/16, fd02::/64)");
  return RouteConfig{*parsed};
}

}  // namespace

Config parse_config(std::string_view text, const std::string& source_name, Keys keys) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& error) {
    throw ConfigError(source_name + ":" + std::to_string(error.source().begin.line) + ": " +
                      std::string(error.description()));
  }
  Config config;
  config.path = source_name;
  for (auto&& [key, node] : root) {
    static constexpr std::string_view kTop[] = {"tun",  "transport", "control", "flows",
                                                "peer", "policy",    "route"};
    if (std::find(std::begin(kTop), std::end(kTop), key.str()) == std::end(kTop))
      throw ConfigError(source_name + ":" + std::to_string(key.source().begin.line) +
                        ": unknown section or key '" + std::string(key.str()) + "'");
  }
  if (auto* tun = sub_table(source_name, root, "tun")) read_tun(source_name, *tun, config.tun);
  if (auto* transport = sub_table(source_name, root, "transport"))
    read_transport(source_name, *transport, config.transport);
  else
    config.transport.local.push_back(*base::Endpoint::parse("0.0.0.0", config.transport.port));
  config.transport.local_default = config.transport.local_default || !root.contains("transport");
  if (auto* control = sub_table(source_name, root, "control")) {
    Section s(source_name, *control, "control");
    s.allow_only({"socket"});
    if (auto socket = s.string("socket")) {
      if (socket->empty() || (*socket)[0] != '/')
        s.fail(s.where("socket"), "socket", "must be an absolute path");
      config.control.socket = *socket;
    }
  }
  if (auto* flows = sub_table(source_name, root, "flows")) {
    Section s(source_name, *flows, "flows");
    s.allow_only({"tcp_idle_s", "udp_idle_s", "other_idle_s", "linger_s", "max", "max_per_peer",
                  "max_per_host"});
    if (auto v = s.integer("tcp_idle_s", 1, 86400 * 7))
      config.flows.tcp_idle_s = static_cast<double>(*v);
    if (auto v = s.integer("udp_idle_s", 1, 86400 * 7))
      config.flows.udp_idle_s = static_cast<double>(*v);
    if (auto v = s.integer("other_idle_s", 1, 86400 * 7))
      config.flows.other_idle_s = static_cast<double>(*v);
    if (auto v = s.integer("linger_s", 0, 600)) config.flows.linger_s = static_cast<double>(*v);
    if (auto v = s.integer("max", 1, 16777216)) config.flows.max = static_cast<std::uint32_t>(*v);
    if (auto v = s.integer("max_per_peer", 1, 16777216))
      config.flows.max_per_peer = static_cast<std::uint32_t>(*v);
    if (auto v = s.integer("max_per_host", 1, 16777216)) {
      if (static_cast<std::uint64_t>(*v) > config.flows.max)
        s.fail(s.where("max_per_host"), "max_per_host",
               "must not exceed max (" + std::to_string(config.flows.max) + ")");
      config.flows.max_per_host = static_cast<std::uint32_t>(*v);
    }
  }
  if (config.flows.max_per_host == 0)
    config.flows.max_per_host = std::max(1u, config.flows.max / 8);
  if (config.control.socket.empty())
    config.control.socket = "/run/sctptund/" + config.tun.name + ".sock";

  std::set<std::string> names;
  for (const toml::table* table : table_array(source_name, root, "peer")) {
    PeerConfig peer = read_peer(source_name, *table, keys);
    if (!names.insert(peer.name).second)
      throw ConfigError(source_name + ":" + std::to_string(table->source().begin.line) +
                        ": [peer] name: '" + peer.name + "' is used by another peer");
    config.peers.push_back(std::move(peer));
  }
  for (const toml::table* table : table_array(source_name, root, "policy"))
    config.rules.push_back(read_rule(source_name, *table, config.peers, config.transport));
  for (const toml::table* table : table_array(source_name, root, "route")) {
    RouteConfig route = read_route(source_name, *table);
    if (std::find(config.routes.begin(), config.routes.end(), route) != config.routes.end())
      config.warnings.push_back("[[route]] " + route.prefix.to_string() + " is listed twice");
    else
      config.routes.push_back(route);
  }

  // No local given: the wildcard address of IPv4, and of IPv6 too where a peer needs it (an IPv6
  // remote, or a peer whose address is learned and may be either).
  bool v6_wanted = std::any_of(config.peers.begin(), config.peers.end(), [](const PeerConfig& p) {
    return p.remote.empty() ||
           std::any_of(p.remote.begin(), p.remote.end(),
                       [](const base::Endpoint& r) { return r.family() == AF_INET6; });
  });
  if (config.transport.local_default && v6_wanted && config.transport.kind != "kernel")
    config.transport.local.push_back(*base::Endpoint::parse("::", config.transport.port));
  for (std::size_t i = 0; i < config.peers.size(); ++i) {
    const PeerConfig& p = config.peers[i];
    if (p.remote.empty() && config.transport.kind == "kernel")
      throw ConfigError(
          source_name + ": peer '" + p.name +
          "' has no remote: learning a peer's address needs [transport] kind = \"udp\" "
          "(the kernel transport connects to configured addresses only)");
    for (std::size_t j = 0; j < i && p.remote.empty(); ++j) {
      if (config.peers[j].remote.empty() && p.key && config.peers[j].key == p.key)
        throw ConfigError(
            source_name + ": peers '" + config.peers[j].name + "' and '" + p.name +
            "' have no remote and the same key: their traffic could not be told apart");
    }
  }
  for (std::size_t i = 0; i < config.peers.size(); ++i) {
    bool used = std::any_of(config.rules.begin(), config.rules.end(), [&](const policy::Rule& r) {
      return r.action == policy::Action::tunnel && r.peer == i;
    });
    if (!used)
      config.warnings.push_back("peer '" + config.peers[i].name +
                                "' is used by no [[policy]] rule");
    const PeerConfig& peer = config.peers[i];
    std::uint32_t per_assoc =
        (std::min(config.flows.max, config.flows.max_per_peer) + peer.pool - 1) / peer.pool;
    if (peer.compression && per_assoc > 32768)
      config.warnings.push_back(
          "peer '" + peer.name + "': up to " + std::to_string(per_assoc) +
          " flows per association ([flows] max_per_peer / pool); beyond 32768 the "
          "peer's header contexts (65536 per association) may run out and compression "
          "then starts over on the streams concerned: raise pool");
    if (peer.key_file.empty())
      config.warnings.push_back(
          "peer '" + peer.name +
          "': no key_file: NOT authenticated and NOT encrypted; anyone who can send "
          "UDP from its address can put packets into " +
          config.tun.name);
    else if (!peer.seal)
      config.warnings.push_back(
          "peer '" + peer.name +
          "': encryption = \"none\": authenticated, but its traffic crosses the WAN "
          "in clear and unprotected against modification");
  }
  return config;
}

std::vector<std::string> restart_needed(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto addresses = [](const TunConfig& t) {
    std::vector<std::string> v;
    for (const auto& address : t.addresses) v.push_back(address.text);
    return v;
  };
  if (a.tun.name != b.tun.name) out.push_back("[tun] name");
  if (a.tun.mtu != b.tun.mtu) out.push_back("[tun] mtu");
  if (a.tun.offload != b.tun.offload) out.push_back("[tun] offload");
  if (a.tun.gro != b.tun.gro) out.push_back("[tun] gro");
  if (addresses(a.tun) != addresses(b.tun)) out.push_back("[tun] addresses");
  if (a.tun.fwmark != b.tun.fwmark || a.tun.bypass_table != b.tun.bypass_table)
    out.push_back("[tun] fwmark / bypass_table");
  if (a.transport.kind != b.transport.kind ||
      a.transport.udp_encapsulation != b.transport.udp_encapsulation ||
      a.transport.local != b.transport.local || a.transport.port != b.transport.port ||
      a.transport.streams != b.transport.streams ||
      a.transport.probe_interval_ms != b.transport.probe_interval_ms ||
      a.transport.failover_ms != b.transport.failover_ms ||
      a.transport.rto_min_ms != b.transport.rto_min_ms ||
      a.transport.rto_max_ms != b.transport.rto_max_ms ||
      a.transport.rto_initial_ms != b.transport.rto_initial_ms ||
      a.transport.heartbeat_ms != b.transport.heartbeat_ms ||
      a.transport.keepalive_s != b.transport.keepalive_s ||
      a.transport.path_mtu != b.transport.path_mtu ||
      a.transport.max_window != b.transport.max_window ||
      a.transport.fec_max_overhead != b.transport.fec_max_overhead ||
      a.transport.congestion_control != b.transport.congestion_control ||
      a.transport.window_cap != b.transport.window_cap ||
      a.transport.multipath != b.transport.multipath || a.transport.stripe != b.transport.stripe)
    out.push_back("[transport]");
  if (a.control.socket != b.control.socket) out.push_back("[control] socket");
  if (a.flows.max != b.flows.max || a.flows.max_per_peer != b.flows.max_per_peer ||
      a.flows.max_per_host != b.flows.max_per_host)
    out.push_back("[flows] max / max_per_peer / max_per_host");
  bool same_peers = a.peers.size() == b.peers.size();
  for (std::size_t i = 0; same_peers && i < a.peers.size(); ++i) {
    same_peers = a.peers[i].name == b.peers[i].name && a.peers[i].remote == b.peers[i].remote &&
                 a.peers[i].port == b.peers[i].port &&
                 a.peers[i].compression == b.peers[i].compression &&
                 a.peers[i].fec == b.peers[i].fec && a.peers[i].pool == b.peers[i].pool &&
                 a.peers[i].key == b.peers[i].key && a.peers[i].seal == b.peers[i].seal;
  }
  if (!same_peers) out.push_back("[[peer]] (added, removed, reordered or changed)");
  return out;
}

policy::Policy make_policy(const Config& config) {
  std::vector<policy::SourceGrant> grants;
  for (std::size_t i = 0; i < config.peers.size(); ++i) {
    for (const policy::Prefix& prefix : config.peers[i].allowed_sources)
      grants.push_back({prefix, static_cast<std::uint32_t>(i)});
  }
  return policy::Policy(config.rules, config.tun.default_action, grants);
}

Config load_config(const std::string& path, Keys keys) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, keys);
}

}  // namespace control
