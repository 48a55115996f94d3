#include "policy/policy.hpp"

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

Policy::Policy(const std::vector<Rule>& rules, Action default_action)
    : default_action_(default_action) {
  for (const Rule& rule : rules) {
    if (!table_.find_exact(rule.prefix)) table_.insert(rule.prefix, rule);
  }
}

Decision Policy::decide(const Match& match) const {
  const Rule* rule = table_.lookup(match.version, match.dst);
  if (!rule) return Decision{default_action_, 0, false};
  return Decision{rule->action, rule->peer, true};
}

}  // namespace policy
