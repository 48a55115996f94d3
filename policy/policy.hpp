#pragma once
// Policy: decides per packet whether to tunnel it (to which peer), bypass it, or drop it; and
// which source addresses each peer may send packets from. Self-contained: no config, logging or
// I/O.
//
// Matching: the rules whose prefix is the longest one containing the destination are tried in
// file order, and the first whose protocol and ports match decides. If none of them matches,
// the rules of the next shorter containing prefix are tried, and so on; then the default action.
//
// Allowed sources: a peer may send from the addresses we tunnel to it, plus its extra prefixes.
// An address A is the peer's when the rules tried for packets to A (in the order above) hold a
// tunnel rule naming the peer before the first rule without protocol and ports, which decides
// every packet it is tried for; whatever the protocol and ports of the tunnel rule. So with
// 10.2.0.0/16 to peer b and 10.2.9.0/24 to peer c, b may send from 10.2.0.0/16 except
// 10.2.9.0/24, which is c's alone; a drop or bypass rule for 10.2.5.0/24 takes that from b too.
// Or the address lies in one of the peer's extra prefixes (SourceGrant), whatever the rules.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/prefix_table.hpp"

namespace policy {

enum class Action : std::uint8_t { tunnel, bypass, drop };
const char* to_string(Action action);

struct PortRange {
  std::uint16_t first = 0, last = 0;  // inclusive
  bool operator==(const PortRange&) const = default;
};

// "80,443,8000-8100" -> ranges; nullopt on any syntax error, empty or reversed range.
std::optional<std::vector<PortRange>> parse_ports(std::string_view text);

struct Rule {
  Prefix prefix;
  std::optional<std::uint8_t> protocol;  // IP protocol number; any when empty
  std::vector<PortRange> ports;          // destination ports; any when empty
  Action action = Action::drop;
  std::uint32_t peer = 0;  // with tunnel: the peer's id
  bool redundant = false;  // with tunnel: every packet on every live path to the peer

  bool operator==(const Rule&) const = default;
};

// What the policy needs to know of a packet.
struct Match {
  std::uint8_t version = 4;
  const std::uint8_t* dst = nullptr;  // 4 or 16 bytes
  std::uint8_t protocol = 0;
  bool has_port = false;
  std::uint16_t dst_port = 0;
};

bool matches(const Rule& rule, const Match& match);

// A prefix a peer may send from whatever the rules say ([[peer]] allowed_sources).
struct SourceGrant {
  Prefix prefix;
  std::uint32_t peer = 0;
  bool operator==(const SourceGrant&) const = default;
};

struct Decision {
  Action action = Action::drop;
  std::uint32_t peer = 0;
  bool matched = false;    // false: no rule matched, the default action applies
  bool redundant = false;  // the matching rule's
};

class Policy {
 public:
  Policy() = default;
  Policy(const std::vector<Rule>& rules, Action default_action,
         const std::vector<SourceGrant>& extra_sources = {});

  Decision decide(const Match& match) const;
  // Whether `peer` may send packets from `src` (4 or 16 bytes in network order by `version`; any
  // other version: false). See "Allowed sources" above. One longest-prefix lookup.
  bool source_allowed(std::uint32_t peer, std::uint8_t version, const std::uint8_t* src) const;
  std::size_t rule_count() const { return rule_count_; }
  Action default_action() const { return default_action_; }

 private:
  // For each prefix: its own rules in file order, then those of every shorter prefix that
  // contains it, longest first. One lookup finds every rule that can apply.
  PrefixTable<std::vector<Rule>> chains_;
  // For every rule and grant prefix: the peers that may send from the addresses whose longest
  // containing prefix (of rules and grants together) it is; sorted, possibly empty (an empty
  // entry keeps a shorter prefix's peers from applying).
  PrefixTable<std::vector<std::uint32_t>> sources_;
  std::size_t rule_count_ = 0;
  Action default_action_ = Action::drop;
};

}  // namespace policy
