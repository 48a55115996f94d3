// UsrsctpTransport, part 2: paths, probes and address learning (doc/PROTOCOL.md, "Path probes").
//
// Probes: every probe_interval, every path of a peer with two or more paths gets a request; a
// peer's single path gets one while it is unconfirmed or the peer has no ready association
// (backoff from probe_interval to 1 s), else only when it sent nothing for keepalive_s (NAT
// mappings). Peers with a key send authenticated probes
// (path_auth.hpp), others the plain 24-byte ones.
//
// Learning (peers with a key): an address becomes a path only by the return-routability check,
// decided by learner_ (path_learner.hpp: candidates, challenges, their limits, commits). This
// file feeds it the authenticated probes and the SCTP packets with a known verification tag from
// an unknown address (of those only heartbeats reach their association until the address is
// proven: usrsctp_receive.cpp), sends the echoes and challenges it answers, and carries out its
// commits: a path moved (the peer moved: NAT rebinding, another uplink) or added. Traffic moves to
// it and retransmissions fire at once. A datagram that proves nothing (no valid MAC, no known tag)
// moves nothing and is answered by nothing; a replayed authenticated probe from a third address
// only draws challenges there, a challenge is answered only when it came from one of the peer's
// paths, and our own probes reflected back to us fail verification (path_auth.hpp).

#include <algorithm>
#include <cmath>
#include <cstring>

#include "src/base/log.hpp"
#include "src/transport/udp/usrsctp_state.hpp"

namespace transport::udp {

using namespace detail;

namespace {
constexpr double kUnconfirmedBackoffMax = 1.0;
// Firings of the retransmission timer after a failover's first, while nothing is acknowledged:
// few, as each counts towards the association's retransmission limit.
constexpr int kChaseFirings = 3;
}  // namespace

std::optional<std::size_t> UsrsctpTransport::pick_socket(const base::Endpoint& remote) const {
  // Ask the host which source address it would use for remote (with our mark, as our datagrams
  // are routed), then take the socket bound to it; else a wildcard socket; else any of the family.
  std::optional<base::Endpoint> source = network_->route(remote, options_.fwmark).source;
  auto find = [&](auto&& good) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      if (sockets_[i]->local().family() == remote.family() && good(sockets_[i]->local())) return i;
    }
    return std::nullopt;
  };
  if (source) {
    if (auto i = find([&](const base::Endpoint& local) { return local.same_address(*source); }))
      return *i;
  }
  if (auto i = find([](const base::Endpoint& local) { return local.is_wildcard(); })) return *i;
  return find([](const base::Endpoint&) { return true; });
}

void UsrsctpTransport::note_unknown_source(const base::Endpoint& from) {
  ++stats_.datagrams_unknown_source;
  // One line per 10 s at most: a scan or a flood must not flood the log.
  if (!unknown_log_.allow(loop_.now())) return;
  LOG_WARN("datagram from %s, which is no peer's address: ignored (%llu such datagrams so far)",
           from.to_string().c_str(),
           static_cast<unsigned long long>(stats_.datagrams_unknown_source));
}

UsrsctpTransport::Peer* UsrsctpTransport::find_peer_by_address(const base::Endpoint& from) const {
  for (const auto& peer : peer_state_) {
    if (peer->path_of(SIZE_MAX, from)) return peer.get();
  }
  return nullptr;
}

UsrsctpTransport::Link* UsrsctpTransport::find_link_by_tag(std::uint32_t tag) const {
  if (tag == 0) return nullptr;
  for (const auto& link : links_) {
    if (std::find(link->local_tags.begin(), link->local_tags.end(), tag) != link->local_tags.end())
      return link.get();
  }
  return nullptr;
}

void UsrsctpTransport::on_probe(std::size_t socket_index, const base::Endpoint& from,
                                std::span<const std::uint8_t> bytes) {
  if (bytes.size() == path_auth::kSize) {
    on_auth_probe(socket_index, from, bytes);
    return;
  }
  if (bytes.size() == path_auth::kSizeV1) {  // the previous version's: no sender, not accepted
    ++stats_.datagrams_malformed;
    if (old_probe_log_.allow(loop_.now())) {  // one line per 10 s at most
      LOG_WARN(
          "authenticated probe of an earlier sctptund (52 bytes) from %s: ignored; "
          "learning addresses needs the same version on both sides (%llu such probes not "
          "logged since the last line)",
          from.to_string().c_str(), static_cast<unsigned long long>(old_probes_unlogged_));
      old_probes_unlogged_ = 0;
    } else {
      ++old_probes_unlogged_;
    }
    return;
  }
  if (bytes.size() != kProbeSize) {
    ++stats_.datagrams_malformed;
    return;
  }
  Peer* peer = find_peer_by_address(from);
  if (!peer) {  // echo nobody but our peers: no reflector for strangers
    note_unknown_source(from);
    return;
  }
  if (bytes[8] == kProbeRequest) {
    std::uint8_t echo[kProbeSize];
    std::memcpy(echo, bytes.data(), kProbeSize);
    echo[8] = kProbeEcho;
    if (sockets_[socket_index]->send_now(from, echo) == 0) ++stats_.probe_echoes_out;
    return;
  }
  if (bytes[8] != kProbeEcho) {
    ++stats_.datagrams_malformed;
    return;
  }
  // Ours only if it came back to the socket the probe left from (the address it comes from may
  // be another of the peer's: a peer bound to the wildcard address answers from its route's).
  echo_arrived(*peer, bytes[9], socket_index, base::load_be32(bytes.data() + 12));
}

void UsrsctpTransport::echo_arrived(Peer& peer, std::size_t id, std::size_t socket_index,
                                    std::uint32_t seq) {
  if (id >= peer.paths.size() || peer.paths[id].socket != socket_index) return;
  double now = mono_now();
  if (!peer.monitor) {
    ++stats_.probes_in;
    return;
  }
  if (peer.monitor->echo_received(id, seq, now)) {
    ++stats_.probes_in;
    update_paths(peer, now);
  }
}

void UsrsctpTransport::on_auth_probe(std::size_t socket_index, const base::Endpoint& from,
                                     std::span<const std::uint8_t> bytes) {
  auto probe = path_auth::parse(bytes);
  if (!probe) {
    ++stats_.datagrams_malformed;
    return;
  }
  Peer* peer = nullptr;
  for (auto& candidate : peer_state_) {
    if (candidate->key && candidate->key->tag == probe->key_tag &&
        path_auth::verify(bytes, *candidate->key)) {
      peer = candidate.get();
      break;
    }
  }
  if (!peer) {  // no key of ours made it: it proves nothing and gets no answer
    ++stats_.probes_unauthenticated;
    if (unauth_log_.allow(loop_.now())) {  // one line per 10 s at most
      Peer* claimed = find_peer_by_address(from);
      LOG_WARN(
          "probe from %s that no key of ours authenticates%s: ignored (%llu such probes so far)",
          from.to_string().c_str(),
          claimed ? (" (peer " + peers_[claimed->id].name +
                     "'s address: do both sides have the same key?)")
                        .c_str()
                  : "",
          static_cast<unsigned long long>(stats_.probes_unauthenticated));
    }
    return;
  }
  double now = mono_now();
  if (probe->kind == path_auth::kEcho) {
    // Our path id comes back; a challenge to a path we did not name (SCTP-nominated) has none.
    std::optional<std::size_t> id;
    if (probe->path_id < peer->paths.size() && peer->paths[probe->path_id].socket == socket_index)
      id = probe->path_id;
    else
      id = peer->path_of(socket_index, from);
    if (!id) return;
    peer->paths[*id].confirmed = true;
    if (probe->seq != 0) echo_arrived(*peer, *id, socket_index, probe->seq);
    if (probe->cookie == 0) return;
    // A challenge: answered only when it came from one of the peer's paths, back to where it
    // came from, on that path.
    std::vector<PathLearner::PathView> paths = path_views(*peer);
    if (auto path = learner_.answer(peer->id, paths, socket_index, from, probe->cookie, now))
      send_request(*peer, *path, probe->cookie, now, &from);
    return;
  }
  // A request: echoed from one of the peer's paths, else the learner's (candidate, commit).
  std::vector<PathLearner::PathView> paths = path_views(*peer);
  carry_out(*peer, socket_index,
            learner_.on_request(peer->id, paths, socket_index, from, *probe, now), now);
}

std::vector<PathLearner::PathView> UsrsctpTransport::path_views(const Peer& peer) const {
  std::vector<PathLearner::PathView> paths;
  paths.reserve(peer.paths.size());
  for (const Peer::Path& path : peer.paths)
    paths.push_back({path.socket, path.remote, path.learned_id});
  return paths;
}

void UsrsctpTransport::carry_out(Peer& peer, std::size_t socket_index,
                                 const PathLearner::Answer& answer, double now) {
  if (answer.new_candidate) {
    LOG_DEBUG("peer %s: %s (socket %s) is a candidate path", peers_[peer.id].name.c_str(),
              answer.new_candidate->to_string().c_str(),
              sockets_[socket_index]->local().to_string().c_str());
  }
  if (answer.commit) commit(peer, *answer.commit, now);
  if (!answer.echo) return;
  const PathLearner::Echo& echo = *answer.echo;
  int err = send_auth(peer, echo.socket, echo.to, echo.probe);
  if (!echo.challenge())
    ++stats_.probe_echoes_out;
  else if (err == 0)
    ++stats_.challenges_out;
}

void UsrsctpTransport::nominate(Link& link, std::size_t socket_index, const base::Endpoint& from) {
  Peer& peer = *link.p;
  if (!peer.key) return;
  double now = mono_now();
  carry_out(peer, socket_index, learner_.nominate(peer.id, socket_index, from, now), now);
}

void UsrsctpTransport::commit(Peer& peer, const PathLearner::Commit& c, double now) {
  const std::string& name = peers_[peer.id].name;
  std::size_t index = c.path;
  if (c.kind == PathLearner::Commit::Kind::moved) {
    Peer::Path& path = peer.paths[index];
    if (peer.learn_log.allow(loop_.now())) {
      LOG_INFO(
          "peer %s: path %zu moved from %s to %s (proved by the peer's key; socket %s; %llu "
          "moves or refusals not logged since the last line)",
          name.c_str(), index, path.remote.to_string().c_str(), c.remote.to_string().c_str(),
          sockets_[c.socket]->local().to_string().c_str(),
          static_cast<unsigned long long>(peer.learn_unlogged));
      peer.learn_unlogged = 0;
    } else {
      ++peer.learn_unlogged;
    }
    path.remote = c.remote;
    ++stats_.path_moves;
  } else if (c.kind == PathLearner::Commit::Kind::full) {
    if (peer.learn_log.allow(loop_.now())) {
      LOG_WARN(
          "peer %s: %s proved itself, but the peer has %zu paths already: not added (%llu moves "
          "or refusals not logged since the last line)",
          name.c_str(), c.remote.to_string().c_str(), peer.paths.size(),
          static_cast<unsigned long long>(peer.learn_unlogged));
      peer.learn_unlogged = 0;
    } else {
      ++peer.learn_unlogged;
    }
    return;
  } else {
    Peer::Path path;
    path.socket = c.socket;
    path.remote = c.remote;
    path.learned_id = c.learned_id;
    peer.paths.push_back(path);
    ++stats_.paths_learned;
    LOG_INFO("peer %s: path %zu learned: %s -> %s (proved by the peer's key)", name.c_str(), index,
             sockets_[c.socket]->local().to_string().c_str(), c.remote.to_string().c_str());
    if (peer.monitor) {
      peer.monitor->add_path(now);
    } else if (peer.paths.size() == 2) {
      // From now on both paths are probed; the one in use stays up (and primary) meanwhile.
      peer.monitor = std::make_unique<PathMonitor>(2, monitor_options(), now);
      if (peer.paths[0].confirmed) peer.monitor->confirm(0, now);
    }
  }
  Peer::Path& path = peer.paths[index];
  path.confirmed = true;
  path.last_out = loop_.now();
  if (peer.monitor) {
    peer.monitor->confirm(index, now);
    update_paths(peer, now);
  } else {
    peer.primary = index;
  }
  nudge_retransmission(peer);
}

int UsrsctpTransport::send_auth(Peer& peer, std::size_t socket_index, const base::Endpoint& to,
                                const path_auth::Probe& probe) {
  auto bytes = path_auth::encode(probe, *peer.key);
  return sockets_[socket_index]->send_now(to, bytes);
}

void UsrsctpTransport::send_request(Peer& peer, std::size_t i, std::uint64_t cookie, double now,
                                    const base::Endpoint* to) {
  Peer::Path& path = peer.paths[i];
  const base::Endpoint& remote = to ? *to : path.remote;
  std::uint32_t seq = peer.monitor ? peer.monitor->probe_sent(i, now) : peer.next_seq++;
  if (seq == 0) seq = peer.next_seq++;
  auto stamp = static_cast<std::uint64_t>(now * 1e6);
  auto id = static_cast<std::uint8_t>(i);
  int err;
  if (peer.key) {
    err = send_auth(peer, path.socket, remote, {path_auth::kRequest, id, seq, stamp, 0, cookie});
  } else {
    std::uint8_t probe[kProbeSize] = {};
    base::store_be32(probe + 4, kProbeMagic);
    probe[8] = kProbeRequest;
    probe[9] = id;
    base::store_be32(probe + 12, seq);
    base::store_be64(probe + 16, stamp);
    err = sockets_[path.socket]->send_now(remote, probe);
  }
  path.last_out = loop_.now();
  if (err == 0) {
    ++stats_.probes_out;
  } else if (local_path_failure(err) && peer.monitor) {
    peer.monitor->send_failed(i, now);
  }
}

PathMonitorOptions UsrsctpTransport::monitor_options() const {
  PathMonitorOptions o;
  o.probe_interval = options_.probe_interval_ms / 1000.0;
  o.failover = options_.failover_ms / 1000.0;
  o.hold = options_.failback_hold_ms / 1000.0;
  return o;
}

void UsrsctpTransport::on_probe_tick() {
  double now = mono_now(), loop_now = loop_.now();
  learner_.expire(now);
  for (auto& peer : peer_state_) {
    // Without a ready association the peer may have lost our address (it restarted, or our
    // NAT mapping changed while idle): SCTP's INITs cannot tell it (they carry no tag of ours),
    // so probe as for an unconfirmed path until an association is up.
    bool assoc_ready = std::any_of(peer->slots.begin(), peer->slots.end(),
                                   [](const Link* l) { return l->machine.ready(); });
    for (std::size_t i = 0; i < peer->paths.size(); ++i) {
      Peer::Path& path = peer->paths[i];
      bool due;
      if (peer->monitor) {
        due = true;  // supervised: every tick
      } else if (peer->key && (!path.confirmed || !assoc_ready)) {
        due = now >= path.next_probe;  // until confirmed and associated, with backoff
        if (due) {
          path.probe_backoff = std::clamp(
              path.probe_backoff * 2, options_.probe_interval_ms / 1000.0, kUnconfirmedBackoffMax);
          path.next_probe = now + path.probe_backoff;
        }
      } else {
        path.probe_backoff = 0;                                  // the next search starts fast
        due = loop_now - path.last_out >= options_.keepalive_s;  // idle: hold NAT mappings open
      }
      if (due) send_request(*peer, i, 0, now);
    }
    update_paths(*peer, now);
    chase_retransmission(*peer, now);
  }
}

void UsrsctpTransport::update_paths(Peer& link, double now) {
  if (!link.monitor) return;
  bool primary_changed = link.monitor->update(now);
  // A path left the active set: its slots moved to the others, and what they had in flight on
  // it goes out again at once (as on a failover).
  if (options_.aggregate && update_active(link, now) && !primary_changed) retransmit_now(link, now);
  if (!primary_changed) return;
  std::size_t from = link.monitor->previous_primary(), to = link.monitor->primary();
  link.primary = to;
  ++link.path_changes;
  const Peer::Path& a = link.paths[from];
  const Peer::Path& b = link.paths[to];
  bool failover = link.monitor->path(from).state != PathState::up;
  LOG_INFO("peer %s: %s from path %zu (%s -> %s, %s) to path %zu (%s -> %s, rtt %.2f ms)",
           peers_[link.id].name.c_str(), failover ? "failover" : "failback", from,
           sockets_[a.socket]->local().to_string().c_str(), a.remote.to_string().c_str(),
           to_string(link.monitor->path(from).state), to,
           sockets_[b.socket]->local().to_string().c_str(), b.remote.to_string().c_str(),
           link.monitor->path(to).srtt * 1000.0);
  if (failover) retransmit_now(link, now);
}

// Data in flight on a path that died goes out again now, and is chased while unacknowledged.
void UsrsctpTransport::retransmit_now(Peer& peer, double now) {
  auto unacked = nudge_retransmission(peer);
  peer.chase = {unacked.empty() ? 0 : kChaseFirings, now + chase_interval(), std::move(unacked)};
}

// Aggregate mode: the paths the slots spread over are the settled ones (PathMonitor::settled: a
// path that came back waits as long as a failback would, a new one joins at once), and the
// primary.
// Paths are every (local socket, peer address) pair, so two uplinks to a peer with two
// addresses make four; they are ordered so that the first ones share neither a local socket nor
// a peer address with an earlier one (then those sharing one, then the rest), so that a pool of
// two spreads over both uplinks at both ends whatever the routing picks by.
// Returns true when a path that carried slots left the set.
bool UsrsctpTransport::update_active(Peer& peer, double now) {
  std::vector<std::size_t> live;
  const PathMonitor& m = *peer.monitor;
  for (std::size_t i = 0; i < m.size() && i < peer.paths.size(); ++i) {
    const PathMonitor::Path& p = m.path(i);
    if (p.state != PathState::up) continue;
    if (i == m.primary() || m.settled(i, now)) live.push_back(i);
  }
  std::vector<std::size_t> active;
  for (int shared_allowed = 0; shared_allowed <= 2; ++shared_allowed) {
    for (std::size_t i : live) {
      if (std::find(active.begin(), active.end(), i) != active.end()) continue;
      bool socket_used = false, remote_used = false;
      for (std::size_t j : active) {
        socket_used |= peer.paths[j].socket == peer.paths[i].socket;
        remote_used |= peer.paths[j].remote.same_address(peer.paths[i].remote);
      }
      if (int{socket_used} + int{remote_used} <= shared_allowed) active.push_back(i);
    }
  }
  if (active == peer.active) return false;
  bool lost = false;
  for (std::size_t i : peer.active)
    lost |= std::find(active.begin(), active.end(), i) == active.end();
  LOG_INFO("peer %s: associations spread over %zu path(s)%s", peers_[peer.id].name.c_str(),
           active.size(), lost ? " (a path left)" : "");
  peer.active = std::move(active);
  return lost;
}

void UsrsctpTransport::chase_retransmission(Peer& peer, double now) {
  if (peer.chase.left == 0 || now < peer.chase.next) return;
  InFlight f = in_flight(peer);
  bool stuck = false;  // an association whose chunks in flight are still those of the last firing
  for (std::size_t i = 0; i < f.unacked.size() && i < peer.chase.unacked.size(); ++i)
    stuck |= f.unacked[i] != 0 && f.unacked[i] == peer.chase.unacked[i];
  if (!stuck) {  // acknowledged: the peer hears us
    peer.chase.left = 0;
    return;
  }
  LOG_DEBUG("peer %s: chunks still unacknowledged after the failover: firing timers again",
            peers_[peer.id].name.c_str());
  --peer.chase.left;
  peer.chase.next = now + chase_interval();
  peer.chase.unacked = nudge_retransmission(peer);
}

// The peer notices a dead path after its own failover time, about ours: half of it between
// firings catches its switch soon without firing more often than probes go out.
double UsrsctpTransport::chase_interval() const {
  return std::max(options_.probe_interval_ms, options_.failover_ms / 2) / 1000.0;
}

UsrsctpTransport::InFlight UsrsctpTransport::in_flight(Peer& peer) const {
  InFlight f;
  f.unacked.resize(peer.slots.size());
  for (std::size_t i = 0; i < peer.slots.size(); ++i) {
    Link* link = peer.slots[i];
    if (!link->sock || !link->machine.ready()) continue;
    sctp_status status{};
    socklen_t len = sizeof status;
    if (usrsctp_getsockopt(link->sock, IPPROTO_SCTP, SCTP_STATUS, &status, &len) != 0) continue;
    if (status.sstat_unackdata == 0) continue;
    f.unacked[i] = status.sstat_unackdata;
    f.total += status.sstat_unackdata;
    f.rto = std::max(f.rto, std::clamp(status.sstat_primary.spinfo_rto, options_.rto_min_ms,
                                       options_.rto_max_ms));
  }
  return f;
}

// usrsctp has no "the path changed" API. The data in flight on the dead path is lost, and its
// retransmission timer may be up to rto_max away (backed off by timeouts on the dead path).
// Advancing usrsctp's clock by the association's current RTO fires that timer now, so the data
// goes out again at once on the new path. Side effect: other timers due within that time (of
// any association) fire early too; they are all restartable (heartbeats, SACK delay, T3).
// Returns the chunks in flight to the peer per slot (empty: nothing was fired).
std::vector<std::uint32_t> UsrsctpTransport::nudge_retransmission(Peer& peer) {
  InFlight f = in_flight(peer);
  if (f.total == 0) return {};
  LOG_DEBUG("peer %s: %u chunks unacknowledged, firing timers %u ms early",
            peers_[peer.id].name.c_str(), f.total, f.rto);
  usrsctp_handle_timers(f.rto + 1);
  service();
  return f.unacked;
}

}  // namespace transport::udp
