#include "src/transport/path_monitor.hpp"

#include <algorithm>
#include <cmath>

namespace transport {

const char* to_string(PathState state) {
  switch (state) {
    case PathState::unknown:
      return "unknown";
    case PathState::up:
      return "up";
    case PathState::down:
      return "down";
  }
  return "?";
}

PathMonitor::PathMonitor(std::size_t paths, PathMonitorOptions options, double now)
    : options_(options), paths_(paths) {
  options_.loss_window = std::max<std::size_t>(options_.loss_window, 1);
  for (Path& p : paths_) {
    p.created = now;
    p.ring.resize(options_.loss_window);
  }
}

std::uint32_t PathMonitor::probe_sent(std::size_t path, double now) {
  Path& p = paths_.at(path);
  std::uint32_t seq = p.next_seq++;
  if (p.next_seq == 0) p.next_seq = 1;  // 0 marks an empty ring slot
  p.ring[seq % p.ring.size()] = {seq, now, false};
  ++p.probes_sent;
  return seq;
}

bool PathMonitor::echo_received(std::size_t path, std::uint32_t seq, double now) {
  if (path >= paths_.size() || seq == 0) return false;
  Path& p = paths_[path];
  Path::Probe& probe = p.ring[seq % p.ring.size()];
  if (probe.seq != seq || probe.answered) return false;
  probe.answered = true;
  ++p.echoes_received;
  double rtt = std::max(0.0, now - probe.sent);
  if (p.srtt == 0 && p.rttvar == 0) {
    p.srtt = rtt;
    p.rttvar = rtt / 2;
  } else {
    p.rttvar = 0.75 * p.rttvar + 0.25 * std::fabs(p.srtt - rtt);
    p.srtt = 0.875 * p.srtt + 0.125 * rtt;
  }
  p.last_echo = now;
  if (p.state != PathState::up) set_state(p, PathState::up, now);
  return true;
}

void PathMonitor::send_failed(std::size_t path, double now) {
  if (path >= paths_.size()) return;
  Path& p = paths_[path];
  if (p.state != PathState::down) set_state(p, PathState::down, now);
}

std::size_t PathMonitor::add_path(double now) {
  Path& p = paths_.emplace_back();
  p.created = now;
  p.ring.resize(options_.loss_window);
  return paths_.size() - 1;
}

void PathMonitor::confirm(std::size_t path, double now) {
  if (path >= paths_.size()) return;
  Path& p = paths_[path];
  for (Path::Probe& probe : p.ring) probe = {};
  p.last_echo = now;
  if (p.state != PathState::up) set_state(p, PathState::up, now);
}

bool PathMonitor::settled(std::size_t path, double now) const {
  const Path& p = paths_.at(path);
  return p.state == PathState::up && (!p.ever_down || now - p.up_since >= options_.hold);
}

void PathMonitor::set_state(Path& p, PathState state, double now) {
  // The first path up after a time with none (the peer starting, restarting, or every link cut):
  // no path has a history to distrust, so each one that answers now is new again.
  if (state == PathState::up && std::none_of(paths_.begin(), paths_.end(), [](const Path& q) {
        return q.state == PathState::up;
      })) {
    for (Path& q : paths_) q.ever_down = false;
  }
  p.state = state;
  if (state == PathState::up) p.up_since = now;
  if (state == PathState::down) p.ever_down = true;
}

bool PathMonitor::update(double now) {
  for (Path& p : paths_) {
    if (p.state == PathState::up && now - p.last_echo >= options_.failover)
      set_state(p, PathState::down, now);
    else if (p.state == PathState::unknown && p.probes_sent > 0 &&
             now - p.created >= options_.failover)
      set_state(p, PathState::down, now);
  }
  std::size_t best = paths_.size();
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (paths_[i].state == PathState::up) {
      best = i;
      break;
    }
  }
  if (best == paths_.size()) return false;  // nothing is up: stay where we are
  std::size_t next = primary_;
  if (paths_[primary_].state == PathState::down) {
    next = best;  // failover: at once
  } else if (paths_[primary_].state == PathState::up && best < primary_ && settled(best, now)) {
    next = best;  // failback: only to a settled path
  }
  if (next == primary_) return false;
  previous_primary_ = primary_;
  primary_ = next;
  ++changes_;
  return true;
}

double PathMonitor::loss(std::size_t path, double now) const {
  const Path& p = paths_.at(path);
  std::size_t counted = 0, lost = 0;
  for (const Path::Probe& probe : p.ring) {
    if (probe.seq == 0) continue;
    if (probe.answered) {
      ++counted;
    } else if (now - probe.sent >= options_.failover) {
      ++counted;
      ++lost;
    }
  }
  return counted ? static_cast<double>(lost) / static_cast<double>(counted) : 0.0;
}

}  // namespace transport
