#pragma once
// Policy: decides per packet whether to tunnel it (to which peer), bypass it, or drop it.
// Self-contained: no config, logging or I/O.
//
// Matching: the rules whose prefix is the longest one containing the destination are tried in
// file order, and the first whose protocol and ports match decides. If none of them matches,
// the rules of the next shorter containing prefix are tried, and so on; then the default action.

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

struct Decision {
  Action action = Action::drop;
  std::uint32_t peer = 0;
  bool matched = false;  // false: no rule matched, the default action applies
};

class Policy {
 public:
  Policy() = default;
  Policy(const std::vector<Rule>& rules, Action default_action);

  Decision decide(const Match& match) const;
  std::size_t rule_count() const { return rule_count_; }
  Action default_action() const { return default_action_; }

 private:
  // For each prefix: its own rules in file order, then those of every shorter prefix that
  // contains it, longest first. One lookup finds every rule that can apply.
  PrefixTable<std::vector<Rule>> chains_;
  std::size_t rule_count_ = 0;
  Action default_action_ = Action::drop;
};

}  // namespace policy
