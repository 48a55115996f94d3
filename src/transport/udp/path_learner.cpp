#include "src/transport/udp/path_learner.hpp"

#include <algorithm>
#include <utility>

namespace transport::udp {

PathLearner::PathLearner(CookieSource cookies) : cookies_(std::move(cookies)) {}

PathLearner::PeerState& PathLearner::state(std::size_t peer) {
  if (peer >= peers_.size()) peers_.resize(peer + 1);
  return peers_[peer];
}

PathLearner::Answer PathLearner::on_request(std::size_t peer_id, std::span<const PathView> paths,
                                            std::size_t socket, const base::Endpoint& from,
                                            const path_auth::Probe& request, double now) {
  Answer answer;
  path_auth::Probe echo{path_auth::kEcho, request.path_id, request.seq, request.stamp, 0, 0};
  // From one of the peer's paths (address and port, on this socket): echo it.
  for (const PathView& path : paths) {
    if (path.socket == socket && path.remote == from) {
      answer.echo = Echo{socket, from, echo};
      return answer;
    }
  }
  // From elsewhere: a candidate. The answer to its challenge makes it a path; else challenge it.
  PeerState& peer = state(peer_id);
  Candidate* c = candidate_for(peer, socket, from, now, answer);
  if (!c) return answer;
  if (request.cookie != 0 && request.cookie == c->cookie) {
    Candidate proven = *c;
    answer.commit = commit(peer, paths, proven, request.path_id);
    answer.echo = Echo{socket, from, echo};
    return answer;
  }
  challenge(peer, *c, request.path_id, request.seq, request.stamp, now, answer);
  return answer;
}

PathLearner::Answer PathLearner::nominate(std::size_t peer_id, std::size_t socket,
                                          const base::Endpoint& from, double now) {
  Answer answer;
  PeerState& peer = state(peer_id);
  if (Candidate* c = candidate_for(peer, socket, from, now, answer))
    challenge(peer, *c, kNoPathId, 0, 0, now, answer);
  return answer;
}

std::optional<std::size_t> PathLearner::answer(std::size_t peer_id, std::span<const PathView> paths,
                                               std::size_t socket, const base::Endpoint& from,
                                               std::uint64_t cookie, double now) {
  std::optional<std::size_t> path;
  for (std::size_t i = 0; i < paths.size() && !path; ++i) {
    const PathView& p = paths[i];
    if (p.socket == socket && (p.learned_id >= 0 ? p.remote == from : p.remote.same_address(from)))
      path = i;
  }
  if (!path) return std::nullopt;
  PeerState& peer = state(peer_id);
  if (cookie == peer.answered_cookie && now - peer.answered_at < kChallengeGap) return std::nullopt;
  peer.answered_cookie = cookie;
  peer.answered_at = now;
  return path;
}

std::size_t PathLearner::expire(double now) {
  std::size_t dropped = 0;
  for (PeerState& peer : peers_) {
    dropped += std::erase_if(peer.candidates,
                             [&](const Candidate& c) { return now - c.created >= kCandidateLife; });
  }
  return dropped;
}

PathLearner::Candidate* PathLearner::candidate_for(PeerState& peer, std::size_t socket,
                                                   const base::Endpoint& from, double now,
                                                   Answer& answer) {
  for (Candidate& c : peer.candidates) {
    if (c.socket == socket && c.from == from && now - c.created < kCandidateLife) return &c;
  }
  std::erase_if(peer.candidates, [&](const Candidate& c) {
    return (c.socket == socket && c.from == from) || now - c.created >= kCandidateLife;
  });
  auto same_address = [&](const Candidate& c) { return c.from.same_address(from); };
  bool address_full =
      static_cast<std::size_t>(std::count_if(peer.candidates.begin(), peer.candidates.end(),
                                             same_address)) >= kMaxCandidatesPerAddress;
  if (address_full || peer.candidates.size() >= kMaxCandidates) {
    // The oldest not awaiting an answer goes: of this address when it has its share, else any.
    auto victim = peer.candidates.end();
    for (auto it = peer.candidates.begin(); it != peer.candidates.end(); ++it) {
      bool awaiting = it->last_challenge >= 0 && now - it->last_challenge < kAnswerWait;
      if (awaiting || (address_full && !same_address(*it))) continue;
      if (victim == peer.candidates.end() || it->created < victim->created) victim = it;
    }
    if (victim == peer.candidates.end()) return nullptr;
    peer.candidates.erase(victim);
  }
  peer.candidates.push_back({socket, from, cookies_(), now, -1, 0});
  answer.new_candidate = from;
  return &peer.candidates.back();
}

void PathLearner::challenge(PeerState& peer, Candidate& c, std::uint8_t path_id, std::uint32_t seq,
                            std::uint64_t stamp, double now, Answer& answer) {
  if (c.challenges >= kChallengesPerCandidate) return;
  if (c.last_challenge >= 0 && now - c.last_challenge < kChallengeGap) return;
  if (now - peer.challenge_window_start >= 1.0) {
    peer.challenge_window_start = now;
    peer.challenges_in_window = 0;
  }
  if (peer.challenges_in_window >= kChallengesPerPeerPerSecond) return;
  ++peer.challenges_in_window;
  ++c.challenges;
  c.last_challenge = now;
  answer.echo = Echo{c.socket, c.from, {path_auth::kEcho, path_id, seq, stamp, 0, c.cookie}};
}

PathLearner::Commit PathLearner::commit(PeerState& peer, std::span<const PathView> paths,
                                        const Candidate& c, std::uint8_t sender_id) {
  std::erase_if(peer.candidates, [&](const Candidate& x) { return x.cookie == c.cookie; });
  Commit result;
  result.socket = c.socket;
  result.remote = c.from;
  result.learned_id = sender_id;
  result.path = paths.size();
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (paths[i].learned_id >= 0 && paths[i].socket == c.socket && paths[i].learned_id == sender_id)
      result.path = i;
  }
  if (result.path < paths.size()) {
    result.kind = Commit::Kind::moved;
    result.previous = paths[result.path].remote;
  } else {
    result.kind = paths.size() >= kMaxPaths ? Commit::Kind::full : Commit::Kind::added;
  }
  return result;
}

}  // namespace transport::udp
