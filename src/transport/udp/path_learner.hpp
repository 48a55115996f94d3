#pragma once
// PathLearner: how a gateway learns its peers' addresses from authenticated path probes
// (path_auth.hpp; doc/PROTOCOL.md, "Path probes"), for every peer with a key. Pure: no sockets,
// no clock (times come in as arguments, seconds of a monotonic clock), cookies from an injectable
// source. The transport feeds it what it sees and carries out what it answers.
//
// An address becomes a path only by the return-routability check:
//   1. Nomination: an authenticated request from an address and port that is no path of the
//      peer (on_request), or an SCTP packet from one that carries a verification tag of one of
//      the peer's associations (nominate). The address becomes a candidate, with a fresh cookie.
//   2. Challenge: an authenticated echo carrying the candidate's cookie, sent only to the
//      candidate: at most every kChallengeGap, kChallengesPerCandidate times per candidate, and
//      kChallengesPerPeerPerSecond per peer (each peer its own budget: one peer's flood takes
//      nothing from another's).
//   3. The peer answers a challenge at once with a request carrying the cookie, sent back to
//      where the challenge came from; it answers only challenges that came from one of its paths
//      to us (answer: our side of step 3, rate limited). A challenge replayed from elsewhere
//      draws no answer, so whoever holds a cookie cannot get it answered for another address.
//   4. Commit: that request, from exactly the candidate's address and port on the same socket,
//      makes it a path: it replaces the learned path with the same peer path id on that socket
//      (the peer moved: NAT rebinding, another uplink), else it adds one (up to kMaxPaths).
// Candidates live kCandidateLife; at most kMaxCandidates per peer, kMaxCandidatesPerAddress of
// them with one IP address (any ports). A candidate is awaiting its answer for kAnswerWait after
// each challenge. A new address and port evicts the oldest candidate that is not awaiting: of
// its own IP address when that has kMaxCandidatesPerAddress, else of all; when every one it could
// evict is awaiting, it becomes no candidate (it may try again later). So replays from many
// ports cannot push out a genuine candidate between its challenge and the answer, nor hold the
// slots another address needs.
// A request from one of the peer's paths (address and port, on the socket) is just echoed.
// Probes of our own (reflected back to us) never reach the learner: they fail verification
// (path_auth.hpp, the sender field).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "src/base/endpoint.hpp"
#include "src/transport/path_auth.hpp"

namespace transport::udp {

class PathLearner {
 public:
  static constexpr double kChallengeGap = 0.1;   // seconds between challenges to a candidate
  static constexpr double kCandidateLife = 5.0;  // seconds a candidate (and its cookie) lives
  static constexpr double kAnswerWait = 1.0;     // seconds a challenge awaits its answer
  static constexpr int kChallengesPerCandidate = 8, kChallengesPerPeerPerSecond = 20;
  static constexpr std::size_t kMaxPaths = 32, kMaxCandidates = 4;
  static constexpr std::size_t kMaxCandidatesPerAddress = 2;  // of one peer, any ports
  // The peer path id of a challenge to an address nominated by SCTP (no request named one).
  static constexpr std::uint8_t kNoPathId = 0xff;

  // What the learner needs to know of one of a peer's paths.
  struct PathView {
    std::size_t socket = 0;  // the local socket it uses
    base::Endpoint remote;   // the peer's address and port
    int learned_id = -1;     // -1: configured; else learned, the peer's own id of the path
  };

  // An authenticated echo to send (the transport adds the key tag and MAC): a plain echo of a
  // request (cookie 0) or a challenge (cookie non-zero).
  struct Echo {
    std::size_t socket = 0;
    base::Endpoint to;
    path_auth::Probe probe;
    bool challenge() const { return probe.cookie != 0; }
  };

  // A candidate proved itself: what becomes of the peer's paths.
  struct Commit {
    enum class Kind { moved, added, full } kind = Kind::added;
    std::size_t path = 0;  // moved: the path whose remote changes; added: the new path's index
    std::size_t socket = 0;
    base::Endpoint remote;        // the proven address and port
    base::Endpoint previous;      // moved: the path's remote before
    std::uint8_t learned_id = 0;  // the peer's id of the path (added: the new path's learned_id)
  };

  // What to do after one input, in this order: log the new candidate, carry out the commit,
  // send the echo.
  struct Answer {
    std::optional<base::Endpoint> new_candidate;  // became a candidate (on the input's socket)
    std::optional<Commit> commit;
    std::optional<Echo> echo;
  };

  using CookieSource = std::function<std::uint64_t()>;  // non-zero random values
  // Peers are named by index (PeerId); their state is made on first use.
  explicit PathLearner(CookieSource cookies = path_auth::random_cookie);

  // An authenticated request (its MAC verified with peer's key) from `from` on `socket`; paths
  // are the peer's paths as they are now.
  Answer on_request(std::size_t peer, std::span<const PathView> paths, std::size_t socket,
                    const base::Endpoint& from, const path_auth::Probe& request, double now);
  // An SCTP packet carrying one of peer's verification tags came from `from`, no path of peer's.
  Answer nominate(std::size_t peer, std::size_t socket, const base::Endpoint& from, double now);
  // An authenticated echo carrying the peer's challenge `cookie` arrived from `from` on `socket`:
  // the index (in paths) of the path it came in on, on which a request carrying the cookie is
  // to be sent back to `from`; nullopt when `from` is none of the peer's paths on that socket
  // (a configured path by address, any port; a learned one by address and port) or the same
  // cookie was answered less than kChallengeGap ago.
  std::optional<std::size_t> answer(std::size_t peer, std::span<const PathView> paths,
                                    std::size_t socket, const base::Endpoint& from,
                                    std::uint64_t cookie, double now);
  // Drops the candidates older than kCandidateLife (a timer tick); returns how many.
  std::size_t expire(double now);

  // Inspection (show, tests).
  std::size_t candidates(std::size_t peer) const {
    return peer < peers_.size() ? peers_[peer].candidates.size() : 0;
  }
  int challenges_in_window(std::size_t peer) const {
    return peer < peers_.size() ? peers_[peer].challenges_in_window : 0;
  }

 private:
  struct Candidate {
    std::size_t socket = 0;
    base::Endpoint from;
    std::uint64_t cookie = 0;
    double created = 0, last_challenge = -1;
    int challenges = 0;
  };
  struct PeerState {
    std::vector<Candidate> candidates;  // at most kMaxCandidates
    std::uint64_t answered_cookie = 0;  // the last challenge we answered, and when
    double answered_at = -1;
    double challenge_window_start = -1;  // challenges sent in the current second
    int challenges_in_window = 0;
  };

  PeerState& state(std::size_t peer);
  // The candidate for from, made if need be; nullptr when every slot awaits an answer.
  Candidate* candidate_for(PeerState& peer, std::size_t socket, const base::Endpoint& from,
                           double now, Answer& answer);
  void challenge(PeerState& peer, Candidate& c, std::uint8_t path_id, std::uint32_t seq,
                 std::uint64_t stamp, double now, Answer& answer);
  Commit commit(PeerState& peer, std::span<const PathView> paths, const Candidate& c,
                std::uint8_t sender_id);

  CookieSource cookies_;
  std::vector<PeerState> peers_;  // index = PeerId
};

}  // namespace transport::udp
