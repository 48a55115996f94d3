#include "tun/route_mirror.hpp"

#include <linux/fib_rules.h>
#include <linux/lwtunnel.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>
#include <netlink/route/rule.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "tun/libnl.hpp"

namespace tun {
namespace {

using libnl::CbPtr;
using libnl::RoutePtr;
using libnl::RulePtr;
using AddrPtr = libnl::NlAddrPtr;

constexpr libnl::Errors kErrors("bypass");

// One route as dumped by the kernel. route is null when libnl could not parse the message.
struct Route {
  RoutePtr route;
  std::uint32_t table = 0;
  int pref = -1;         // RTA_PREF (IPv6 router preference), which libnl 3.7 does not parse
  bool faithful = true;  // false: carries an encapsulation libnl cannot copy
  bool from_main = false;
  std::string slot, signature;  // see describe()
};

struct DumpContext {
  std::uint32_t table;  // besides main, the only table kept
  std::vector<Route>* out;
};

std::uint32_t table_of(nlmsghdr* nlh) {
  nlattr* table = nlmsg_find_attr(nlh, sizeof(rtmsg), RTA_TABLE);
  return table ? nla_get_u32(table) : static_cast<const rtmsg*>(nlmsg_data(nlh))->rtm_table;
}

int collect_route(nl_msg* msg, void* arg) {
  auto* context = static_cast<DumpContext*>(arg);
  nlmsghdr* nlh = nlmsg_hdr(msg);
  if (nlh->nlmsg_type != RTM_NEWROUTE || !nlmsg_valid_hdr(nlh, sizeof(rtmsg))) return NL_SKIP;
  const int family = static_cast<const rtmsg*>(nlmsg_data(nlh))->rtm_family;
  const std::uint32_t table = table_of(nlh);
  if ((family != AF_INET && family != AF_INET6) ||
      (table != RT_TABLE_MAIN && table != context->table))
    return NL_SKIP;
  Route route;
  route.table = table;
  rtnl_route* parsed = nullptr;
  if (rtnl_route_parse(nlh, &parsed) >= 0) route.route.reset(parsed);
  if (nlattr* pref = nlmsg_find_attr(nlh, sizeof(rtmsg), RTA_PREF)) route.pref = nla_get_u8(pref);
  if (nlattr* encap = nlmsg_find_attr(nlh, sizeof(rtmsg), RTA_ENCAP_TYPE))
    route.faithful = nla_get_u16(encap) == LWTUNNEL_ENCAP_MPLS;
  context->out->push_back(std::move(route));
  return NL_OK;
}

// Every IPv4 and IPv6 route of table main and of `table`, read with one dump (retried if the
// kernel reports it interrupted by a concurrent change).
std::vector<Route> dump_routes(nl_sock* sock, std::uint32_t table) {
  for (int attempt = 1;; attempt++) {
    std::vector<Route> routes;
    DumpContext context{table, &routes};
    kErrors.check(nl_rtgen_request(sock, RTM_GETROUTE, AF_UNSPEC, NLM_F_DUMP),
                  "request route dump");
    const CbPtr socket_cb(nl_socket_get_cb(sock));  // takes a reference
    const CbPtr cb(nl_cb_clone(socket_cb.get()));
    kErrors.allocated(cb.get(), "read route dump");
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, collect_route, &context);
    const int err = nl_recvmsgs(sock, cb.get());
    if (err == -NLE_DUMP_INTR && attempt < 5) continue;
    kErrors.check(err, "read route dump");
    return routes;
  }
}

std::string address_text(nl_addr* address) {
  if (!address) return "-";
  if (nl_addr_get_prefixlen(address) == 0) return "any";
  std::string text;
  const auto* bytes = static_cast<const unsigned char*>(nl_addr_get_binary_addr(address));
  for (unsigned i = 0; i < nl_addr_get_len(address); i++) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", bytes[i]);
    text += hex;
  }
  return text + "/" + std::to_string(nl_addr_get_prefixlen(address));
}

bool is_unicast(rtnl_route* route) {
  return rtnl_route_get_type(route) == RTN_UNICAST;
}

// slot: what the kernel files a route under (family, tos, destination, source, metric).
// signature: the slot plus everything a copy must reproduce. Nexthop flags other than onlink
// (linkdown, offload...) are the kernel's state, not configuration; a reject route's nexthop
// is the kernel's too (IPv6 reports "dev lo").
void describe(Route& r) {
  rtnl_route* route = r.route.get();
  const auto n = [](auto value) { return std::to_string(value) + " "; };
  // The kernel reports RTA_PREF for every IPv6 route; without one it means "medium" (0).
  const int pref = r.pref < 0 && rtnl_route_get_family(route) == AF_INET6 ? 0 : r.pref;
  r.slot = n(rtnl_route_get_family(route)) + n(rtnl_route_get_tos(route)) +
           address_text(rtnl_route_get_dst(route)) + " " + address_text(rtnl_route_get_src(route)) +
           " " + n(rtnl_route_get_priority(route));
  std::string sig = r.slot + n(rtnl_route_get_type(route)) + n(rtnl_route_get_scope(route)) +
                    n(rtnl_route_get_protocol(route)) + n(pref) +
                    address_text(rtnl_route_get_pref_src(route)) + " m";
  for (int metric = 1; metric <= RTAX_MAX; metric++) {
    std::uint32_t value = 0;
    if (rtnl_route_get_metric(route, metric, &value) == 0) sig += n(metric) + n(value);
  }
  if (is_unicast(route)) {
    std::vector<std::string> hops;
    for (int i = 0; i < rtnl_route_get_nnexthops(route); i++) {
      rtnl_nexthop* hop = rtnl_route_nexthop_n(route, i);
      hops.push_back(
          n(rtnl_route_nh_get_ifindex(hop)) + address_text(rtnl_route_nh_get_gateway(hop)) + " " +
          n(rtnl_route_nh_get_weight(hop)) + n(rtnl_route_nh_get_flags(hop) & RTNH_F_ONLINK) +
          n(rtnl_route_nh_get_realms(hop)));
    }
    std::sort(hops.begin(), hops.end());
    for (const std::string& hop : hops) sig += "| " + hop;
  }
  r.signature = std::move(sig);
}

bool uses_interface(rtnl_route* route, int ifindex) {
  for (int i = 0; i < rtnl_route_get_nnexthops(route); i++) {
    if (rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(route, i)) == ifindex) return true;
  }
  return false;
}

bool has_gateway(rtnl_route* route) {
  for (int i = 0; i < rtnl_route_get_nnexthops(route); i++) {
    if (rtnl_route_nh_get_gateway(rtnl_route_nexthop_n(route, i))) return true;
  }
  return false;
}

// Clears what the kernel reports but refuses on input (RTNH_F_DEAD, RTNH_F_LINKDOWN...).
void keep_only_onlink_flags(rtnl_route* route) {
  rtnl_route_unset_flags(route, ~static_cast<std::uint32_t>(RTNH_F_ONLINK));
  for (int i = 0; i < rtnl_route_get_nnexthops(route); i++) {
    rtnl_route_nh_unset_flags(rtnl_route_nexthop_n(route, i),
                              ~static_cast<unsigned>(RTNH_F_ONLINK));
  }
}

// "unreachable default table T metric 4294967295": the last resort of the mirror table. Without
// it a marked packet that T cannot route would fall through to the next rule, main, and find
// the TUN there.
Route unreachable_default(int family, std::uint32_t table) {
  Route r;
  r.route.reset(rtnl_route_alloc());
  AddrPtr any(nl_addr_alloc(0));
  if (!r.route || !any) kErrors.fail("build unreachable default route", nl_geterror(NLE_NOMEM));
  nl_addr_set_family(any.get(), family);
  nl_addr_set_prefixlen(any.get(), 0);
  rtnl_route_set_family(r.route.get(), static_cast<std::uint8_t>(family));
  rtnl_route_set_dst(r.route.get(), any.get());
  rtnl_route_set_table(r.route.get(), table);
  rtnl_route_set_type(r.route.get(), RTN_UNREACHABLE);
  rtnl_route_set_scope(r.route.get(), RT_SCOPE_UNIVERSE);
  rtnl_route_set_protocol(r.route.get(), RTPROT_STATIC);
  rtnl_route_set_priority(r.route.get(), 0xffffffffu);
  r.table = table;
  return r;
}

// Adds the route with NLM_F_CREATE | flags, carrying RTA_PREF along.
int add_route(nl_sock* sock, const Route& r, int flags) {
  nl_msg* msg = nullptr;
  int err = rtnl_route_build_add_request(r.route.get(), flags, &msg);
  if (err < 0) return err;
  if (r.pref >= 0 && nla_put_u8(msg, RTA_PREF, static_cast<std::uint8_t>(r.pref)) < 0) {
    nlmsg_free(msg);
    return -NLE_NOMEM;
  }
  return nl_send_sync(sock, msg);  // frees msg
}

int delete_route(nl_sock* sock, const Route& r) {
  keep_only_onlink_flags(r.route.get());
  const int err = rtnl_route_delete(sock, r.route.get(), 0);
  return err == -NLE_OBJ_NOTFOUND ? 0 : err;  // already gone: fine
}

}  // namespace

RouteMirror::RouteMirror(int excluded_ifindex, std::uint32_t mark, std::uint32_t table,
                         std::uint32_t rule_priority)
    : excluded_ifindex_(excluded_ifindex), mark_(mark), table_(table), priority_(rule_priority) {
  try {
    sock_ = libnl::route_socket(kErrors);
    notify_sock_ = kErrors.allocated(nl_socket_alloc(), "allocate netlink sockets");
    nl_socket_enable_msg_peek(sock_);  // dump messages of any size
    // The manager connects notify_sock_ itself, subscribes it to the route groups and makes it
    // non-blocking; we keep the socket to see every notification before libnl's cache does.
    kErrors.check(nl_cache_mngr_alloc(notify_sock_, NETLINK_ROUTE, NL_AUTO_PROVIDE, &manager_),
                  "allocate route cache manager");
    nl_socket_enable_msg_peek(notify_sock_);
    nl_socket_set_buffer_size(notify_sock_, 1 << 20, 0);  // fewer overruns in a burst; best effort
    kErrors.check(
        nl_socket_modify_cb(notify_sock_, NL_CB_MSG_IN, NL_CB_CUSTOM, on_notification, this),
        "hook route notifications");
    nl_cache* cache = nullptr;
    kErrors.check(nl_cache_mngr_add(manager_, "route/route", on_cache_change, this, &cache),
                  "watch routes (cache manager)");
    sync(true);  // fill the table first, so that the rules never lead to an empty one
    change_rules(true);
  } catch (...) {
    teardown();
    throw;
  }
}

RouteMirror::~RouteMirror() {
  teardown();
}

void RouteMirror::teardown() noexcept {
  if (sock_) {
    try {
      change_rules(false);
      flush_table();
    } catch (...) {  // nothing more we can do on the way out
    }
  }
  if (manager_) nl_cache_mngr_free(manager_);  // closes notify_sock_, which stays ours to free
  if (notify_sock_) nl_socket_free(notify_sock_);
  if (sock_) nl_socket_free(sock_);
  manager_ = nullptr, notify_sock_ = nullptr, sock_ = nullptr;
}

int RouteMirror::fd() const {
  return nl_cache_mngr_get_fd(manager_);
}

void RouteMirror::on_readable() {
  // An error here is most likely an overrun (ENOBUFS): notifications were lost, so re-read.
  if (nl_cache_mngr_data_ready(manager_) < 0) main_dirty_ = true;
  if (!main_dirty_ && !table_dirty_) return;
  try {
    sync(main_dirty_);
  } catch (const std::exception&) {
    stats_.sync_failures++;
  }
}

void RouteMirror::resync() {
  sync(true);
}

// Any notification about a route of main or of the mirror table (libnl's cache is not consulted).
int RouteMirror::on_notification(nl_msg* msg, void* self) {
  auto* mirror = static_cast<RouteMirror*>(self);
  nlmsghdr* nlh = nlmsg_hdr(msg);
  if ((nlh->nlmsg_type == RTM_NEWROUTE || nlh->nlmsg_type == RTM_DELROUTE) &&
      nlmsg_valid_hdr(nlh, sizeof(rtmsg))) {
    const std::uint32_t table = table_of(nlh);
    if (table == RT_TABLE_MAIN) mirror->main_dirty_ = true;
    if (table == mirror->table_) mirror->table_dirty_ = true;
  }
  return NL_OK;
}

// The cache manager's change callback. Redundant with on_notification() (which also sees the
// changes this cache folds together), kept so that a change libnl reports is never missed.
void RouteMirror::on_cache_change(nl_cache*, nl_object* object, int, void* self) {
  auto* mirror = static_cast<RouteMirror*>(self);
  const std::uint32_t table = rtnl_route_get_table(reinterpret_cast<rtnl_route*>(object));
  if (table == RT_TABLE_MAIN) mirror->main_dirty_ = true;
  if (table == mirror->table_) mirror->table_dirty_ = true;
}

void RouteMirror::sync(bool main_changed) {
  const bool was_main_dirty = main_dirty_, was_table_dirty = table_dirty_;
  main_dirty_ = table_dirty_ = false;  // notifications arriving from now on count for the next sync
  std::vector<Route> dumped;
  try {
    dumped = dump_routes(sock_, table_);
  } catch (...) {
    main_dirty_ = main_dirty_ || was_main_dirty || main_changed;
    table_dirty_ = table_dirty_ || was_table_dirty;
    throw;
  }
  stats_.syncs++;
  RouteMirrorStats& s = stats_;
  s.mirrored = s.skipped_tun = s.refused = 0;

  // What the table should hold, and what it holds, grouped by slot.
  std::vector<Route> wanted;
  std::vector<Route*> present;
  for (Route& r : dumped) {
    if (!r.route) {
      if (r.table == RT_TABLE_MAIN) s.refused++;  // unparseable: cannot even tell its device
      continue;
    }
    if (rtnl_route_get_flags(r.route.get()) & RTM_F_CLONED) continue;
    if (r.table == table_) {
      describe(r);
      present.push_back(&r);
      continue;
    }
    const int type = rtnl_route_get_type(r.route.get());
    if (type == RTN_LOCAL || type == RTN_BROADCAST || type == RTN_ANYCAST || type == RTN_MULTICAST)
      continue;  // the kernel's own kinds (table local); main holds none normally
    if (uses_interface(r.route.get(), excluded_ifindex_)) {
      s.skipped_tun++;
      continue;
    }
    if (!r.faithful) {
      s.refused++;
      continue;
    }
    Route copy;
    copy.route.reset(reinterpret_cast<rtnl_route*>(
        nl_object_clone(reinterpret_cast<nl_object*>(r.route.get()))));
    kErrors.allocated(copy.route.get(), "copy route");
    rtnl_route_set_table(copy.route.get(), table_);
    // A throw route would continue the lookup with main, where the TUN is: for the mirror it
    // is as unreachable as for main (whose next table, default, is normally empty).
    if (type == RTN_THROW) rtnl_route_set_type(copy.route.get(), RTN_UNREACHABLE);
    keep_only_onlink_flags(copy.route.get());
    copy.table = table_, copy.pref = r.pref, copy.from_main = true;
    wanted.push_back(std::move(copy));
  }
  wanted.push_back(unreachable_default(AF_INET, table_));
  wanted.push_back(unreachable_default(AF_INET6, table_));

  struct Slot {
    std::vector<Route*> want, have;
  };
  std::map<std::string, Slot> slots;
  for (Route& r : wanted) {
    describe(r);
    slots[r.slot].want.push_back(&r);
  }
  for (Route* r : present) slots[r->slot].have.push_back(r);

  struct Add {
    Route* route;
    bool replace;
  };
  std::vector<Add> adds;
  std::vector<Route*> removals;
  const auto contains = [](const std::vector<Route*>& list, const Route* r) {
    return std::any_of(list.begin(), list.end(),
                       [&](const Route* other) { return other->signature == r->signature; });
  };
  for (auto& [key, slot] : slots) {
    // Replace in place when the slot holds one route on both sides: atomic, no gap. Otherwise
    // (IPv6 keeps routes to one prefix and metric through several devices side by side, and
    // NLM_F_REPLACE would overwrite the wrong one) add beside, then remove the stale ones.
    const bool replace = slot.want.size() == 1 && slot.have.size() <= 1;
    for (Route* r : slot.want)
      if (!contains(slot.have, r)) adds.push_back({r, replace});
    for (Route* r : slot.have)
      if (!contains(slot.want, r)) removals.push_back(r);
  }
  // Routes without a gateway first: a gateway must be reachable when its route is added.
  std::stable_sort(adds.begin(), adds.end(), [](const Add& a, const Add& b) {
    return !has_gateway(a.route->route.get()) && has_gateway(b.route->route.get());
  });

  std::set<std::string> added;
  std::vector<Route*> retry;  // refused as duplicates of a stale route: again once it is gone
  std::size_t failed_from_main = 0;
  for (const Add& add : adds) {
    if (!main_changed && last_added_.count(add.route->signature)) {
      // Added by the previous sync, and only our own changes happened since: the copy does
      // not compare equal to its original, and adding it again would loop. Wait for main.
      added.insert(add.route->signature);
      s.refused++, failed_from_main += add.route->from_main;
      continue;
    }
    const int err = add_route(sock_, *add.route, add.replace ? NLM_F_REPLACE : 0);
    if (err >= 0) {
      added.insert(add.route->signature);
      s.routes_added++;
    } else if (err == -NLE_EXIST && !add.replace) {
      retry.push_back(add.route);
    } else {
      s.refused++, failed_from_main += add.route->from_main;
    }
  }
  for (Route* r : removals)
    if (delete_route(sock_, *r) >= 0) s.routes_removed++;
  for (Route* r : retry) {
    if (add_route(sock_, *r, 0) >= 0) {
      added.insert(r->signature);
      s.routes_added++;
    } else {
      s.refused++, failed_from_main += r->from_main;
    }
  }
  last_added_ = std::move(added);
  const auto from_main = static_cast<std::size_t>(
      std::count_if(wanted.begin(), wanted.end(), [](const Route& r) { return r.from_main; }));
  s.mirrored = from_main - failed_from_main;
}

void RouteMirror::change_rules(bool add) {
  for (const int family : {AF_INET, AF_INET6}) {
    bool& installed = family == AF_INET ? rules_v4_ : rules_v6_;
    if (!add && !installed) continue;
    const std::string what = std::string(add ? "add" : "remove") + " rule 'fwmark " +
                             std::to_string(mark_) + " lookup " + std::to_string(table_) +
                             " priority " + std::to_string(priority_) + "' (" +
                             (family == AF_INET ? "IPv4" : "IPv6") + ")";
    const RulePtr rule(rtnl_rule_alloc());
    kErrors.allocated(rule.get(), what);
    rtnl_rule_set_family(rule.get(), family);
    rtnl_rule_set_prio(rule.get(), priority_);
    rtnl_rule_set_mark(rule.get(), mark_);
    rtnl_rule_set_mask(rule.get(), 0xffffffffu);
    rtnl_rule_set_table(rule.get(), table_);
    rtnl_rule_set_action(rule.get(), FR_ACT_TO_TBL);
    if (!add) {
      rtnl_rule_delete(sock_, rule.get(), 0);  // gone already: fine
      installed = false;
      continue;
    }
    // NLM_F_EXCL: without it the kernel happily adds a second identical rule.
    const int err = rtnl_rule_add(sock_, rule.get(), NLM_F_EXCL);
    if (family == AF_INET6 && err == -NLE_AF_NOSUPPORT) continue;  // a host without IPv6
    if (err != -NLE_EXIST) kErrors.check(err, what);
    installed = true;
  }
}

void RouteMirror::flush_table() {
  for (Route& r : dump_routes(sock_, table_))
    if (r.route && r.table == table_) delete_route(sock_, r);
}

}  // namespace tun
