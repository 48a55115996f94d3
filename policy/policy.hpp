#pragma once
// Policy: decides per packet whether to tunnel it (to which peer), bypass it, or drop it.
// Rules are matched by the longest destination prefix. Self-contained: no config or logging.

#include <cstdint>
#include <string>
#include <vector>

#include "policy/prefix_table.hpp"

namespace policy {

enum class Action : std::uint8_t { tunnel, bypass, drop };
const char* to_string(Action action);

struct Rule {
  Prefix prefix;
  Action action = Action::drop;
  std::uint32_t peer = 0;  // with tunnel: index of the peer
};

// What the policy needs to know of a packet.
struct Match {
  std::uint8_t version = 4;
  const std::uint8_t* dst = nullptr;  // 4 or 16 bytes
};

struct Decision {
  Action action = Action::drop;
  std::uint32_t peer = 0;
  bool matched = false;  // false: no rule matched, the default action applies
};

class Policy {
 public:
  Policy() = default;
  // Later rules with a prefix equal to an earlier one are ignored (the first in the file wins).
  Policy(const std::vector<Rule>& rules, Action default_action);

  Decision decide(const Match& match) const;
  std::size_t size() const { return table_.size(); }
  Action default_action() const { return default_action_; }

 private:
  PrefixTable<Rule> table_;
  Action default_action_ = Action::drop;
};

}  // namespace policy
