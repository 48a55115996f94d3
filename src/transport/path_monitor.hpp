#pragma once
// PathMonitor: the state of the paths (local socket, remote address) to one peer, judged by our
// own probes (doc/PROTOCOL.md, "Path probes"), and the choice of the primary path. Pure logic
// with the time passed in (seconds, any monotonic origin), so tests drive it with fake time.
//
//  - A path is "unknown" until its first echo, "up" while echoes come back, and "down" when
//    none has come back for `failover` seconds (or a send failed locally: no route, link down).
//  - RTT is smoothed as in RFC 6298; loss is the fraction of the last `loss_window` probes that
//    were not answered (a probe counts once it was answered or is older than `failover`).
//  - The primary is the best live path: the lowest index (config order) among the up ones.
//    When the primary is down, traffic moves at once to the best up path (failover); a better
//    path than the primary takes over only once it is settled (failback). While no path is up,
//    the primary stays where it is; so does a primary still unknown (at start it waits for its
//    first echo or the failover time, rather than moving to whichever path answered first).
//  - A path is settled when it is up and has never been down (a path seen up for the first
//    time), or has been up for `hold` seconds since it came back: a path that came back may
//    flap, a new one has no history to distrust. After a time with no path up (the peer
//    starting or restarting, every link cut) every path is new again.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace transport {

enum class PathState { unknown, up, down };
const char* to_string(PathState state);

struct PathMonitorOptions {
  double probe_interval = 0.2;   // seconds between probes on each path
  double failover = 0.6;         // a path with no echo for this long is down
  double hold = 1.0;             // a better path must be up this long before traffic returns
  std::size_t loss_window = 20;  // probes the loss fraction is computed over
};

class PathMonitor {
 public:
  struct Path {
    PathState state = PathState::unknown;
    double srtt = 0, rttvar = 0;  // seconds; 0 until the first echo
    double last_echo = 0;         // when the last echo arrived (valid once state != unknown)
    double up_since = 0;          // when the path last became up
    bool ever_down = false;       // judged down since the last time with no path up
    double created = 0;
    std::uint32_t next_seq = 1;
    std::uint64_t probes_sent = 0, echoes_received = 0;
    struct Probe {
      std::uint32_t seq = 0;
      double sent = 0;
      bool answered = false;
    };
    std::vector<Probe> ring;  // the last loss_window probes, ring[seq % loss_window]
  };

  PathMonitor(std::size_t paths, PathMonitorOptions options, double now);

  std::size_t size() const { return paths_.size(); }
  const Path& path(std::size_t i) const { return paths_[i]; }
  const PathMonitorOptions& options() const { return options_; }

  // A probe is going out on path now: returns its sequence number.
  std::uint32_t probe_sent(std::size_t path, double now);
  // An echo of probe seq came back on path. Returns false (and changes nothing) for an echo of
  // a probe we do not remember (too old, duplicated, forged).
  bool echo_received(std::size_t path, std::uint32_t seq, double now);
  // Sending on path failed locally (no route, interface down): the path is down at once.
  void send_failed(std::size_t path, double now);
  // A path learned while running (appended: it ranks after every earlier one); returns its index.
  std::size_t add_path(double now);
  // The path proved itself some other way (an authenticated exchange at a new address): up now,
  // with no RTT sample. Earlier probes on it no longer count.
  void confirm(std::size_t path, double now);

  // Up, and new or up for the hold time since it came back (see above).
  bool settled(std::size_t path, double now) const;

  // Re-evaluates path states and the primary. Returns true when the primary changed; then
  // previous_primary() is the one traffic left.
  bool update(double now);
  std::size_t primary() const { return primary_; }
  std::size_t previous_primary() const { return previous_primary_; }
  std::uint64_t changes() const { return changes_; }

  // Fraction (0..1) of the last loss_window probes on path that went unanswered.
  double loss(std::size_t path, double now) const;

 private:
  void set_state(Path& p, PathState state, double now);

  PathMonitorOptions options_;
  std::vector<Path> paths_;
  std::size_t primary_ = 0, previous_primary_ = 0;
  std::uint64_t changes_ = 0;
};

}  // namespace transport
