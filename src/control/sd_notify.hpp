#pragma once
// The systemd notification protocol (sd_notify(3)) without libsystemd: newline-separated
// VAR=value assignments in one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
// "@name" for the abstract namespace). Without $NOTIFY_SOCKET (not started by systemd with
// Type=notify) everything here does nothing.
//
// What the daemon sends (src/daemon.cpp; the unit is packaging/sctptund@.service):
//   READY=1       once the TUN interface is up and the first association to any peer has finished
//                 its handshake, or after Readiness's bounded wait without one
//   STATUS=...    "tunnel up: 2 association(s) ready, 1 of 1 peer(s) up" / "waiting for peers: ..."
//                 whenever that changes (shown by systemctl status)
//   RELOADING=1   + MONOTONIC_USEC= at the start of a reload, READY=1 after it (either outcome)
//   STOPPING=1    on SIGTERM/SIGINT

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace control::sd_notify {

// True when $NOTIFY_SOCKET names a socket to notify.
bool enabled();

// Sends `state` (e.g. "READY=1\nSTATUS=tunnel up") as one datagram; false when $NOTIFY_SOCKET is
// unset or unusable or the send failed. Never blocks: a datagram the manager's full queue refuses
// is dropped.
bool send(std::string_view state);

// Whether this process has sent a READY=1 (successfully).
bool ready_sent();

// Decides when to send READY=1 and what STATUS= to show; pure, so the daemon polls it with the
// current counts (cheap) and sends what it returns.
class Readiness {
 public:
  explicit Readiness(double max_wait_s) : max_wait_s_(max_wait_s) {}

  // assocs_ready: associations ready to carry packets; peers_up: peers with at least one;
  // elapsed_s: time since the daemon started. Returns the message to send now, "" for none:
  // "READY=1\nSTATUS=..." the first time an association is ready or max_wait_s has passed,
  // afterwards "STATUS=..." whenever the counts change (before READY=1: once, when waiting).
  std::string update(std::size_t assocs_ready, std::size_t peers_up, std::size_t peers,
                     double elapsed_s);
  bool ready() const { return ready_; }

  static std::string status(std::size_t assocs_ready, std::size_t peers_up, std::size_t peers);

 private:
  double max_wait_s_;
  bool ready_ = false;
  std::optional<std::string> reported_;  // the last STATUS= text sent
};

// Brackets a configuration reload: RELOADING=1 (with MONOTONIC_USEC=, which systemd 253+ uses to
// match the reload) when constructed, READY=1 when destroyed, whatever the reload's outcome (a
// refused reload leaves the old configuration running). Does nothing before the first READY=1,
// so a SIGHUP during start-up cannot end the start early.
class ReloadScope {
 public:
  ReloadScope();
  ~ReloadScope();
  ReloadScope(const ReloadScope&) = delete;
  ReloadScope& operator=(const ReloadScope&) = delete;

 private:
  bool active_;
};

}  // namespace control::sd_notify
