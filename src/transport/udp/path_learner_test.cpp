#include "src/transport/udp/path_learner.hpp"

#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using transport::udp::PathLearner;
namespace path_auth = transport::path_auth;

namespace {

base::Endpoint ep(const char* address, std::uint16_t port) {
  return *base::Endpoint::parse(address, port);
}

path_auth::Probe request(std::uint8_t path_id, std::uint64_t cookie = 0, std::uint32_t seq = 7) {
  return {path_auth::kRequest, path_id, seq, 123456, 0, cookie};
}

// One peer's paths as the transport keeps them, changed by the learner's commits as the
// transport does; cookies are 1, 2, 3, ... in the order candidates are made.
struct Peer {
  std::uint64_t next_cookie = 1;
  PathLearner learner{[this] { return next_cookie++; }};
  std::vector<PathLearner::PathView> paths;

  PathLearner::Answer req(std::size_t socket, const base::Endpoint& from,
                          const path_auth::Probe& probe, double now, std::size_t peer = 0) {
    PathLearner::Answer a = learner.on_request(peer, paths, socket, from, probe, now);
    if (a.commit) apply(*a.commit);
    return a;
  }
  void apply(const PathLearner::Commit& c) {
    if (c.kind == PathLearner::Commit::Kind::moved) {
      paths.at(c.path).remote = c.remote;
    } else if (c.kind == PathLearner::Commit::Kind::added) {
      REQUIRE(c.path == paths.size());
      paths.push_back({c.socket, c.remote, c.learned_id});
    }
  }
  // The request from `from` draws a challenge; its answer (the cookie) commits.
  PathLearner::Commit learn(std::size_t socket, const base::Endpoint& from, std::uint8_t path_id,
                            double now) {
    PathLearner::Answer a = req(socket, from, request(path_id), now);
    REQUIRE(a.echo);
    REQUIRE(a.echo->challenge());
    PathLearner::Answer b = req(socket, from, request(path_id, a.echo->probe.cookie), now + 0.01);
    REQUIRE(b.commit);
    return *b.commit;
  }
};

}  // namespace

TEST_CASE("path learner: a first address is challenged, then learned by the answer") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000);
  PathLearner::Answer first = p.req(1, a, request(0, 0, 42), 10.0);
  REQUIRE(first.new_candidate);
  CHECK(*first.new_candidate == a);
  CHECK_FALSE(first.commit);
  REQUIRE(first.echo);
  CHECK(first.echo->challenge());
  CHECK(first.echo->socket == 1);
  CHECK(first.echo->to == a);
  CHECK(first.echo->probe.kind == path_auth::kEcho);
  CHECK(first.echo->probe.cookie == 1);
  CHECK(first.echo->probe.path_id == 0);
  CHECK(first.echo->probe.seq == 42);  // the echo copies the request's fields
  CHECK(first.echo->probe.stamp == 123456);
  CHECK(p.learner.candidates(0) == 1);

  PathLearner::Answer second = p.req(1, a, request(0, 1, 43), 10.05);
  CHECK_FALSE(second.new_candidate);
  REQUIRE(second.commit);
  CHECK(second.commit->kind == PathLearner::Commit::Kind::added);
  CHECK(second.commit->path == 0);
  CHECK(second.commit->socket == 1);
  CHECK(second.commit->remote == a);
  CHECK(second.commit->learned_id == 0);
  REQUIRE(second.echo);  // the committing request is echoed like any request on a path
  CHECK_FALSE(second.echo->challenge());
  CHECK(second.echo->to == a);
  CHECK(second.echo->probe.seq == 43);
  CHECK(p.learner.candidates(0) == 0);
  CHECK(p.paths.size() == 1);

  // From now on its requests are just echoed.
  PathLearner::Answer third = p.req(1, a, request(0, 0, 44), 11.0);
  CHECK_FALSE(third.new_candidate);
  CHECK_FALSE(third.commit);
  REQUIRE(third.echo);
  CHECK_FALSE(third.echo->challenge());
  CHECK(p.learner.candidates(0) == 0);
}

TEST_CASE("path learner: NAT rebinding moves the learned path with the same peer path id") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000), b = ep("198.51.100.1", 4001);
  p.learn(0, a, 0, 0.0);
  PathLearner::Commit c = p.learn(0, b, 0, 1.0);
  CHECK(c.kind == PathLearner::Commit::Kind::moved);
  CHECK(c.path == 0);
  CHECK(c.previous == a);
  CHECK(c.remote == b);
  REQUIRE(p.paths.size() == 1);
  CHECK(p.paths[0].remote == b);
  // The old address is no path any more: a request from it is a candidate again.
  PathLearner::Answer old = p.req(0, a, request(0), 2.0);
  CHECK(old.new_candidate);
  CHECK_FALSE(old.commit);
}

TEST_CASE("path learner: another peer path id, or another socket, adds a second path") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000), b = ep("203.0.113.9", 5000);
  p.learn(0, a, 0, 0.0);
  PathLearner::Commit second = p.learn(0, b, 1, 1.0);
  CHECK(second.kind == PathLearner::Commit::Kind::added);
  CHECK(second.path == 1);
  CHECK(second.learned_id == 1);
  // The same peer path id on another of our sockets is another path too.
  PathLearner::Commit third = p.learn(1, ep("203.0.113.10", 5000), 1, 2.0);
  CHECK(third.kind == PathLearner::Commit::Kind::added);
  CHECK(third.path == 2);
  REQUIRE(p.paths.size() == 3);
  CHECK(p.paths[0].remote == a);
  CHECK(p.paths[1].remote == b);
}

TEST_CASE("path learner: a configured path is never moved, and a full peer adds nothing") {
  Peer p;
  p.paths.push_back({0, ep("192.0.2.1", 9899), -1});  // from the config
  PathLearner::Commit c = p.learn(0, ep("192.0.2.7", 9899), 0, 0.0);
  CHECK(c.kind == PathLearner::Commit::Kind::added);
  CHECK(c.path == 1);
  CHECK(p.paths[0].remote == ep("192.0.2.1", 9899));

  while (p.paths.size() < PathLearner::kMaxPaths) p.paths.push_back({0, ep("192.0.2.1", 1), -1});
  PathLearner::Commit full = p.learn(0, ep("192.0.2.8", 9899), 5, 1.0);
  CHECK(full.kind == PathLearner::Commit::Kind::full);
  CHECK(p.paths.size() == PathLearner::kMaxPaths);
  CHECK(p.learner.candidates(0) == 0);  // the proven candidate is gone all the same
}

TEST_CASE("path learner: an address nominated by SCTP is challenged without a peer path id") {
  Peer p;
  base::Endpoint a = ep("2001:db8::1", 4000);
  PathLearner::Answer n = p.learner.nominate(0, 0, a, 0.0);
  REQUIRE(n.new_candidate);
  REQUIRE(n.echo);
  CHECK(n.echo->challenge());
  CHECK(n.echo->probe.path_id == PathLearner::kNoPathId);
  CHECK(n.echo->probe.seq == 0);
  CHECK(n.echo->probe.stamp == 0);
  // Another SCTP packet at once draws no second challenge (the gap), and no new candidate.
  PathLearner::Answer again = p.learner.nominate(0, 0, a, 0.05);
  CHECK_FALSE(again.new_candidate);
  CHECK_FALSE(again.echo);
  // The peer's answer names its path id.
  PathLearner::Answer c = p.req(0, a, request(3, n.echo->probe.cookie), 0.06);
  REQUIRE(c.commit);
  CHECK(c.commit->kind == PathLearner::Commit::Kind::added);
  CHECK(c.commit->learned_id == 3);
}

TEST_CASE("path learner: challenges to a candidate are spaced and counted") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000);
  int challenges = 0;
  // A request every 10 ms for 4 s (the candidate lives 5 s): one challenge per 100 ms, 8 in all.
  for (int i = 0; i < 400; ++i) {
    PathLearner::Answer x = p.req(0, a, request(0), i * 0.01);
    if (x.echo) {
      CHECK(x.echo->challenge());
      CHECK(x.echo->probe.cookie == 1);  // the same candidate, the same cookie
      ++challenges;
    }
    CHECK_FALSE(x.commit);
  }
  CHECK(challenges == PathLearner::kChallengesPerCandidate);
  CHECK(p.learner.candidates(0) == 1);
}

TEST_CASE("path learner: a flood from many addresses stays within its bounds") {
  Peer p;
  int challenges = 0, candidates_made = 0;
  // 1000 addresses of two peers within one second: 4 candidates per peer at most, each awaiting
  // its answer for kAnswerWait, so 4 candidates made and challenged per peer.
  for (int i = 0; i < 1000; ++i) {
    std::string address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    PathLearner::Answer x = p.req(0, ep(address.c_str(), 4000), request(0), i * 0.0009, i % 2);
    challenges += x.echo ? 1 : 0;
    candidates_made += x.new_candidate ? 1 : 0;
    CHECK_FALSE(x.commit);
    CHECK(p.learner.candidates(0) <= PathLearner::kMaxCandidates);
    CHECK(p.learner.candidates(1) <= PathLearner::kMaxCandidates);
  }
  CHECK(candidates_made == 2 * static_cast<int>(PathLearner::kMaxCandidates));
  CHECK(challenges == 2 * static_cast<int>(PathLearner::kMaxCandidates));
  CHECK(p.learner.candidates(0) == PathLearner::kMaxCandidates);
  // Once their challenges wait no more, new addresses replace them, with a fresh budget.
  PathLearner::Answer later = p.req(0, ep("10.9.9.9", 4000), request(0), 1.5);
  CHECK(later.new_candidate);
  CHECK(later.echo);
  CHECK(p.learner.challenges_in_window(0) == 1);
}

TEST_CASE("path learner: each peer's challenges have their own budget") {
  Peer p;
  // Four addresses of peer 0 that keep sending (every 10 ms, for a second): each gets a
  // challenge every 100 ms until the peer's budget of the second is spent.
  int challenges = 0;
  for (int i = 0; i < 100; ++i) {
    for (int a = 0; a < 4; ++a) {
      std::string address = "10.0.0." + std::to_string(a + 1);
      challenges += p.req(0, ep(address.c_str(), 4000), request(0), i * 0.01).echo ? 1 : 0;
    }
  }
  CHECK(challenges == PathLearner::kChallengesPerPeerPerSecond);
  CHECK(p.learner.challenges_in_window(0) == PathLearner::kChallengesPerPeerPerSecond);
  CHECK(p.learner.challenges_in_window(1) == 0);
  CHECK(p.req(0, ep("10.1.0.1", 4000), request(0), 0.995, 1).echo);  // peer 1's own budget
}

TEST_CASE("path learner: the oldest candidate no longer awaiting its answer makes room") {
  Peer p;
  std::vector<base::Endpoint> from;
  for (int i = 0; i < 5; ++i) {
    from.push_back(ep(("10.1.0." + std::to_string(i + 1)).c_str(), 4000));
    p.req(0, from.back(), request(0), i * 0.2);  // cookies 1 to 4; the fifth: no room
  }
  CHECK(p.learner.candidates(0) == PathLearner::kMaxCandidates);
  // At 1.0 the first challenge waits no more: the first candidate goes, its cookie with it.
  PathLearner::Answer late = p.req(0, from[4], request(0), 1.0);
  CHECK(late.new_candidate);
  REQUIRE(late.echo);
  CHECK(late.echo->probe.cookie == 5);
  PathLearner::Answer old = p.req(0, from[0], request(0, 1), 1.05);
  CHECK_FALSE(old.commit);
  CHECK_FALSE(old.new_candidate);  // every slot awaits its answer again
  // The others still commit.
  CHECK(p.req(0, from[3], request(0, 4), 1.1).commit);
  CHECK(p.req(0, from[4], request(0, 5), 1.1).commit);
}

TEST_CASE("path learner: candidates and their cookies expire") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000);
  p.req(0, a, request(0), 0.0);  // cookie 1
  // Just within the life the answer commits; at the end of it, it does not.
  SUBCASE("in time") {
    PathLearner::Answer x = p.req(0, a, request(0, 1), PathLearner::kCandidateLife - 0.01);
    CHECK(x.commit);
  }
  SUBCASE("too late") {
    PathLearner::Answer x = p.req(0, a, request(0, 1), PathLearner::kCandidateLife);
    CHECK_FALSE(x.commit);
    CHECK(x.new_candidate);
    REQUIRE(x.echo);
    CHECK(x.echo->probe.cookie == 2);  // a fresh challenge, with a fresh budget of 8
    CHECK(p.learner.candidates(0) == 1);
  }
  SUBCASE("dropped by a tick") {
    CHECK(p.learner.expire(PathLearner::kCandidateLife - 0.01) == 0);
    CHECK(p.learner.expire(PathLearner::kCandidateLife) == 1);
    CHECK(p.learner.candidates(0) == 0);
    CHECK_FALSE(p.req(0, a, request(0, 1), PathLearner::kCandidateLife + 0.1).commit);
  }
}

TEST_CASE("path learner: wrong cookies commit nothing") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000), b = ep("198.51.100.2", 4000);
  p.req(0, a, request(0), 0.0);  // cookie 1
  p.req(0, b, request(0), 0.0);  // cookie 2
  CHECK_FALSE(p.req(0, a, request(0, 999), 0.2).commit);
  CHECK_FALSE(p.req(0, a, request(0, 2), 0.4).commit);     // b's cookie, from a
  CHECK_FALSE(p.req(1, a, request(0, 1), 0.6).commit);     // a's cookie, on another socket
  CHECK_FALSE(p.req(0, a, request(0, 1), 0.7, 1).commit);  // a's cookie, for another peer
  CHECK(p.paths.empty());
  CHECK(p.req(0, a, request(0, 1), 0.8).commit);  // the right one still works
}

TEST_CASE("path learner: replays from another address move nothing") {
  Peer p;
  base::Endpoint a = ep("198.51.100.1", 4000), evil = ep("203.0.113.66", 4000);
  p.learn(0, a, 0, 0.0);  // cookie 1 proved a
  // The committing request (cookie 1) replayed from another address: a candidate there, a
  // challenge there (to the spoofer's address, with a fresh cookie), no move.
  PathLearner::Answer x = p.req(0, evil, request(0, 1), 1.0);
  CHECK_FALSE(x.commit);
  REQUIRE(x.echo);
  CHECK(x.echo->to == evil);
  CHECK(x.echo->probe.cookie == 2);
  // An old request (no cookie) replayed over and over: at most 8 challenges, never a move.
  int challenges = 0;
  for (int i = 0; i < 70; ++i) {  // within the candidate's life
    PathLearner::Answer y = p.req(0, evil, request(0, 0, 7), 1.1 + i * 0.05);
    CHECK_FALSE(y.commit);
    challenges += y.echo ? 1 : 0;
  }
  CHECK(challenges == PathLearner::kChallengesPerCandidate - 1);
  REQUIRE(p.paths.size() == 1);
  CHECK(p.paths[0].remote == a);
  // A replay from the path itself is only echoed.
  PathLearner::Answer z = p.req(0, a, request(0, 1), 2.0);
  CHECK_FALSE(z.commit);
  REQUIRE(z.echo);
  CHECK_FALSE(z.echo->challenge());
}

TEST_CASE("path learner: echoes carrying a challenge are answered once per gap, and move nothing") {
  Peer p;
  base::Endpoint hub = ep("198.51.100.1", 4000);
  p.paths.push_back({0, hub, -1});  // configured: by address, any port
  p.req(0, ep("198.51.100.9", 4000), request(0), 0.0);
  CHECK(p.learner.answer(0, p.paths, 0, hub, 77, 0.0) == std::optional<std::size_t>(0));
  CHECK_FALSE(p.learner.answer(0, p.paths, 0, hub, 77, 0.05));  // the same challenge: not yet
  CHECK(p.learner.answer(0, p.paths, 0, hub, 78, 0.06));        // a new challenge: at once
  CHECK(p.learner.answer(0, p.paths, 0, hub, 77, 0.2));         // the old one, after the gap
  CHECK(p.learner.answer(1, p.paths, 0, hub, 78, 0.2));         // per peer
  CHECK(p.learner.answer(0, p.paths, 0, ep("198.51.100.1", 5000), 79, 0.3));  // any port
  CHECK(p.learner.candidates(0) == 1);                                        // untouched
  CHECK(p.paths.size() == 1);
}

TEST_CASE("path learner: challenges from no path of the peer are not answered") {
  Peer p;
  base::Endpoint hub = ep("198.51.100.1", 4000), evil = ep("203.0.113.66", 4000);
  p.paths.push_back({0, hub, -1});
  p.paths.push_back({1, ep("198.51.100.2", 4000), 3});  // learned: by address and port
  CHECK_FALSE(p.learner.answer(0, p.paths, 0, evil, 77, 0.0));
  CHECK_FALSE(p.learner.answer(0, p.paths, 1, hub, 77, 0.1));  // the hub's address, other socket
  CHECK_FALSE(p.learner.answer(0, p.paths, 1, ep("198.51.100.2", 4001), 77, 0.2));
  CHECK(p.learner.answer(0, p.paths, 1, ep("198.51.100.2", 4000), 77, 0.3) ==
        std::optional<std::size_t>(1));
}

TEST_CASE("path learner: a captured challenge and the reflected-answer sequence move nothing") {
  // Two learners, a hub h (learns spoke s at sa) and the spoke; an eavesdropper at evil.
  Peer h, s;
  base::Endpoint sa = ep("198.51.100.1", 4000), ha = ep("192.0.2.2", 9899),
                 evil = ep("203.0.113.66", 4000);
  s.paths.push_back({0, ha, -1});
  h.learn(0, sa, 0, 0.0);  // cookie 1
  // The eavesdropper makes itself a candidate at h (a captured request of s replayed) and gets
  // the challenge, cookie 2.
  PathLearner::Answer x = h.req(0, evil, request(0), 1.0);
  REQUIRE(x.echo);
  REQUIRE(x.echo->to == evil);
  std::uint64_t cookie = x.echo->probe.cookie;
  // It sends the challenge on to s: from its own address, s does not answer.
  CHECK_FALSE(s.learner.answer(0, s.paths, 0, evil, cookie, 1.01));
  // Nor does the hub's own challenge reflected to the hub verify (path_auth: the sender field),
  // so h never answers it either; and s's answer to a genuine challenge (cookie 1, replayed from
  // evil) is a wrong cookie there.
  for (int i = 0; i < 10; ++i)
    CHECK_FALSE(h.req(0, evil, request(0, i % 2 ? cookie - 1 : 0), 1.1 + i * 0.1).commit);
  REQUIRE(h.paths.size() == 1);
  CHECK(h.paths[0].remote == sa);
}

TEST_CASE("path learner: replays from many ports do not evict a candidate awaiting its answer") {
  Peer p;
  base::Endpoint genuine = ep("198.51.100.1", 4000);
  PathLearner::Answer g = p.req(0, genuine, request(0), 0.0);  // cookie 1
  REQUIRE(g.echo);
  REQUIRE(g.echo->challenge());
  // A captured request replayed from 200 ports of the eavesdropper's address, within 100 ms.
  for (int i = 0; i < 200; ++i) {
    auto port = static_cast<std::uint16_t>(20000 + i);
    CHECK_FALSE(p.req(0, ep("203.0.113.66", port), request(0), 0.0005 * i).commit);
    CHECK(p.learner.candidates(0) <= PathLearner::kMaxCandidates);
  }
  // The genuine answer, one round trip later, still commits.
  PathLearner::Answer answer = p.req(0, genuine, request(0, 1), 0.15);
  CHECK(answer.commit);
  REQUIRE(p.paths.size() == 1);
  CHECK(p.paths[0].remote == genuine);
}

TEST_CASE("path learner: one peer's flood does not starve another peer's challenges") {
  Peer p;
  int others = 0, flood = 0;
  base::Endpoint other = ep("198.51.100.7", 4000);
  // Peer 0's captured request replayed from 2000 ports within a second; meanwhile peer 1 moved
  // and sends a request from its new address every 125 ms.
  for (int i = 0; i < 2000; ++i) {
    auto port = static_cast<std::uint16_t>(20000 + i);
    double now = i * 0.0005;
    flood += p.req(0, ep("203.0.113.66", port), request(0), now, 0).echo ? 1 : 0;
    if (i % 250 == 0) {
      PathLearner::Answer x = p.req(0, other, request(0), now, 1);
      others += x.echo && x.echo->challenge() ? 1 : 0;
    }
  }
  CHECK(others == PathLearner::kChallengesPerCandidate);
  CHECK(flood <= PathLearner::kChallengesPerPeerPerSecond);
}

TEST_CASE("path learner: replays from one address's many ports leave room for another address") {
  Peer p;
  base::Endpoint genuine = ep("198.51.100.1", 4000);
  int evil_candidates = 0;
  // The flood starts first: the captured request replayed from 200 ports of one address.
  for (int i = 0; i < 200; ++i) {
    auto port = static_cast<std::uint16_t>(20000 + i);
    evil_candidates +=
        p.req(0, ep("203.0.113.66", port), request(0), 0.0005 * i).new_candidate ? 1 : 0;
  }
  CHECK(evil_candidates == static_cast<int>(PathLearner::kMaxCandidatesPerAddress));
  // The peer's new address is a candidate, is challenged and commits all the same.
  PathLearner::Answer g = p.req(0, genuine, request(0), 0.1);
  CHECK(g.new_candidate);
  REQUIRE(g.echo);
  REQUIRE(g.echo->challenge());
  CHECK(p.req(0, genuine, request(0, g.echo->probe.cookie), 0.15).commit);
}
