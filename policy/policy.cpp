#include "policy/policy.hpp"

#include <algorithm>

namespace policy {

const char* to_string(Action action) {
  switch (action) {
    case Action::tunnel:
      return "tunnel";
    case Action::bypass:
      return "bypass";
    case Action::drop:
      return "drop";
  }
  return "?";
}

std::optional<std::vector<PortRange>> parse_ports(std::string_view text) {
  std::vector<PortRange> out;
  auto number = [](std::string_view digits) -> std::optional<std::uint16_t> {
    if (digits.empty() || digits.size() > 5) return std::nullopt;
    unsigned value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
  };
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    std::size_t dash = item.find('-');
    auto first = number(item.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (!first || !last || *last < *first) return std::nullopt;
    out.push_back({*first, *last});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;  // trailing comma
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool matches(const Rule& rule, const Match& match) {
  if (rule.protocol && *rule.protocol != match.protocol) return false;
  if (rule.ports.empty()) return true;
  if (!match.has_port) return false;
  return std::any_of(rule.ports.begin(), rule.ports.end(), [&](const PortRange& r) {
    return match.dst_port >= r.first && match.dst_port <= r.last;
  });
}

Policy::Policy(const std::vector<Rule>& rules, Action default_action,
               const std::vector<SourceGrant>& extra_sources)
    : rule_count_(rules.size()), default_action_(default_action) {
  PrefixTable<std::vector<Rule>> own;  // each prefix's own rules, in file order
  for (const Rule& rule : rules) {
    const std::vector<Rule>* existing = own.find_exact(rule.prefix);
    std::vector<Rule> list = existing ? *existing : std::vector<Rule>{};
    list.push_back(rule);
    own.insert(rule.prefix, std::move(list));
  }
  own.for_each([&](const Prefix& prefix, const std::vector<Rule>& list) {
    std::vector<Rule> chain = list;
    for (int len = static_cast<int>(prefix.length()) - 1; len >= 0; --len) {
      auto shorter =
          Prefix::from_bytes(prefix.family(), prefix.bytes().data(), static_cast<unsigned>(len));
      if (const std::vector<Rule>* outer = own.find_exact(*shorter))
        chain.insert(chain.end(), outer->begin(), outer->end());
    }
    chains_.insert(prefix, std::move(chain));
  });

  PrefixTable<std::vector<std::uint32_t>> grants;  // each grant prefix's own peers
  for (const SourceGrant& grant : extra_sources) {
    const std::vector<std::uint32_t>* existing = grants.find_exact(grant.prefix);
    std::vector<std::uint32_t> peers = existing ? *existing : std::vector<std::uint32_t>{};
    peers.push_back(grant.peer);
    grants.insert(grant.prefix, std::move(peers));
  }
  // A prefix X that is the longest one containing an address A: the rule prefixes containing A
  // are those containing X, so the first chain found walking up from X is A's, and the grants
  // containing A are those containing X.
  auto peers_of = [&](const Prefix& prefix) {
    std::vector<std::uint32_t> peers;
    bool chain_seen = false;
    for (int len = static_cast<int>(prefix.length()); len >= 0; --len) {
      auto up =
          Prefix::from_bytes(prefix.family(), prefix.bytes().data(), static_cast<unsigned>(len));
      if (const std::vector<Rule>* chain = chain_seen ? nullptr : chains_.find_exact(*up)) {
        chain_seen = true;
        for (const Rule& rule : *chain) {
          if (rule.action == Action::tunnel) peers.push_back(rule.peer);
          if (!rule.protocol && rule.ports.empty()) break;  // decides all the rest
        }
      }
      if (const std::vector<std::uint32_t>* granted = grants.find_exact(*up))
        peers.insert(peers.end(), granted->begin(), granted->end());
    }
    std::sort(peers.begin(), peers.end());
    peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
    return peers;
  };
  auto add = [&](const Prefix& prefix, const auto&) {
    if (!sources_.find_exact(prefix)) sources_.insert(prefix, peers_of(prefix));
  };
  chains_.for_each(add);
  grants.for_each(add);
}

bool Policy::source_allowed(std::uint32_t peer, std::uint8_t version,
                            const std::uint8_t* src) const {
  const std::vector<std::uint32_t>* peers = sources_.lookup(version, src);
  return peers && std::binary_search(peers->begin(), peers->end(), peer);
}

Decision Policy::decide(const Match& match) const {
  if (const std::vector<Rule>* chain = chains_.lookup(match.version, match.dst)) {
    for (const Rule& rule : *chain) {
      if (matches(rule, match)) return Decision{rule.action, rule.peer, true, rule.redundant};
    }
  }
  return Decision{default_action_, 0, false};
}

}  // namespace policy
