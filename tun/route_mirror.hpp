#pragma once
// tun::RouteMirror: the routing half of tun::Bypass (see bypass.hpp). Keeps routing table `table`
// equal to the main table minus every route through one interface (the TUN), plus one
// "unreachable default" per family, and installs the ip rules "fwmark M lookup table" that send
// marked traffic there. Over libnl-3 route; no shelling out to ip(8).
//
// How the mirror stays current: a libnl cache manager ("route/route", NL_AUTO_PROVIDE) is
// subscribed to the IPv4 and IPv6 route notifications; any notification about a route of table
// main or of `table` marks the mirror dirty, and on_readable() then re-reads both tables with a
// fresh dump and applies the difference. The manager's own cache only serves as the notification
// source: libnl files routes under (family, tos, table, destination, metric), so two routes that
// differ only in their device (fe80::/64 on every IPv6 link, for one) share one cache entry, and
// the cache would both hide routes and swallow the deletion of the second one. The dump parses
// every route message itself, and a hook on the manager's socket sees every notification.
//
// Threading: one thread at a time, like tun::Netlink.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

struct nl_sock;
struct nl_cache_mngr;
struct nl_cache;
struct nl_object;
struct nl_msg;

namespace tun {

struct RouteMirrorStats {
  // As of the latest sync:
  std::size_t mirrored = 0;     // routes of main present in the mirror table
  std::size_t skipped_tun = 0;  // routes of main through the excluded interface, left out
  std::size_t refused = 0;      // routes of main that could not be copied (the kernel refused
                                // them, or they carry attributes libnl cannot copy faithfully)
  // Since construction:
  std::uint64_t syncs = 0;           // syncs that read both tables
  std::uint64_t sync_failures = 0;   // syncs that could not read them (retried on the next change)
  std::uint64_t routes_added = 0;    // routes added to or replaced in the mirror table
  std::uint64_t routes_removed = 0;  // stale routes removed from it
};

class RouteMirror {
 public:
  // Connects, subscribes to route changes, fills `table`, then adds the rules (IPv4 and IPv6;
  // an identical rule already present is fine). Throws std::runtime_error "bypass: <what>:
  // <why>" if any of that fails, after undoing what it did.
  RouteMirror(int excluded_ifindex, std::uint32_t mark, std::uint32_t table,
              std::uint32_t rule_priority);
  // Removes the rules, then every route of `table`. Never throws.
  ~RouteMirror();
  RouteMirror(const RouteMirror&) = delete;
  RouteMirror& operator=(const RouteMirror&) = delete;

  // The notification socket: poll it for readability and call on_readable(). Non-blocking.
  int fd() const;
  // Reads the pending notifications and syncs if a route of main or of the table changed (or
  // notifications were lost). Never throws: a failed sync counts in sync_failures.
  void on_readable();
  // Re-reads both tables and applies the difference now. Throws if the tables cannot be read;
  // single routes the kernel refuses are counted in stats().refused, not thrown.
  void resync();

  const RouteMirrorStats& stats() const { return stats_; }
  std::uint32_t table() const { return table_; }

 private:
  void sync(bool main_changed);
  void change_rules(bool add);
  void flush_table();
  void teardown() noexcept;
  static void on_cache_change(nl_cache*, nl_object* object, int action, void* self);
  static int on_notification(nl_msg* msg, void* self);

  const int excluded_ifindex_;
  const std::uint32_t mark_, table_, priority_;
  nl_sock* sock_ = nullptr;         // dumps, adds, deletes (waits for each acknowledgement)
  nl_sock* notify_sock_ = nullptr;  // the cache manager's; ours to free after the manager
  nl_cache_mngr* manager_ = nullptr;
  bool rules_v4_ = false, rules_v6_ = false;  // rules added (to remove in teardown)
  bool main_dirty_ = false, table_dirty_ = false;
  // Signatures added by the latest sync. A sync that only answers our own changes to the table
  // does not add them again: a route whose copy never compares equal would loop otherwise.
  std::set<std::string> last_added_;
  RouteMirrorStats stats_;
};

}  // namespace tun
