#include "src/gateway/counters.hpp"

namespace gateway {

const char* to_string(Drop reason) {
  switch (reason) {
    case Drop::tun_malformed:
      return "tun_malformed";
    case Drop::no_rule:
      return "no_rule";
    case Drop::policy_drop:
      return "policy_drop";
    case Drop::bypass_failed:
      return "bypass_failed";
    case Drop::peer_down:
      return "peer_down";
    case Drop::flow_limit:
      return "flow_limit";
    case Drop::send_error:
      return "send_error";
    case Drop::wire_malformed:
      return "wire_malformed";
    case Drop::before_handshake:
      return "before_handshake";
    case Drop::inner_malformed:
      return "inner_malformed";
    case Drop::unknown_assoc:
      return "unknown_assoc";
    case Drop::hc_error:
      return "hc_error";
    case Drop::tun_write:
      return "tun_write";
    case Drop::auth_failed:
      return "auth_failed";
    case Drop::not_sealed:
      return "not_sealed";
    case Drop::source_not_allowed:
      return "source_not_allowed";
    case Drop::host_flow_limit:
      return "host_flow_limit";
    case Drop::count_:
      break;
  }
  return "?";
}

}  // namespace gateway
