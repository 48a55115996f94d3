// libFuzzer target for path probes (src/transport/path_auth.hpp) and the path learner
// (src/transport/udp/path_learner.hpp): whatever probes and SCTP packets come from whatever
// addresses at whatever (fake) times, no crash and no undefined behaviour, and nothing becomes
// a path that did not pass the return-routability check. Built and run by fuzz/run.sh
// path_probes.
//
// The input is a sequence of operations, each an opcode byte and its operands. Addresses come
// from a pool of 8 endpoints (4 addresses, 2 ports each); peers are 0 and 1 (peer 0 starts with
// one configured path), sockets 0 and 1:
//   0 PARSE     [len][bytes]             path_auth::parse and verify (both keys) on raw bytes
//   1 REQUEST   [peer][sock][addr][path id][cookie choice]   an authenticated request
//   2 NOMINATE  [peer][sock][addr]       an SCTP packet with one of the peer's tags
//   3 ANSWER    [peer][sock][addr][cookie choice]            the peer's challenge to answer
//   4 TIME      [dt]                     time passes (dt * 10 ms), then expire()
// A cookie choice picks one of the cookies the learner issued so far (or a made-up one).
// Checked after every operation, with the harness keeping each peer's paths as the transport
// does (commits applied):
//  - a commit comes only from a request carrying a cookie the learner sent, in a challenge, to
//    exactly that peer, socket and address and port, and names that address and port;
//  - a challenge goes only to the address and port (and socket) of the input that drew it; a
//    plain echo answers only a request from one of the peer's paths;
//  - at most kMaxCandidates candidates per peer, kChallengesPerPeerPerSecond challenges per peer
//    in its window, kMaxPaths paths;
//  - answer() returns a path that exists, on the input's socket.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "src/base/endpoint.hpp"
#include "src/transport/path_auth.hpp"
#include "src/transport/udp/path_learner.hpp"

namespace {

using transport::udp::PathLearner;
namespace path_auth = transport::path_auth;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

const std::vector<base::Endpoint>& pool() {
  static const std::vector<base::Endpoint> kPool = [] {
    std::vector<base::Endpoint> v;
    for (const char* a : {"192.0.2.1", "192.0.2.10", "198.18.0.2", "2001:db8::2"})
      for (std::uint16_t port : {9899, 40400}) v.push_back(*base::Endpoint::parse(a, port));
    return v;
  }();
  return kPool;
}

struct Issued {
  std::size_t peer, socket;
  base::Endpoint to;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  std::uint64_t next_cookie = 1;
  PathLearner learner([&] { return next_cookie++ * 0x9e3779b97f4a7c15ull | 1; });
  std::vector<PathLearner::PathView> paths[2];
  paths[0].push_back({0, pool()[0], -1});  // peer 0: one configured path
  std::vector<std::uint64_t> cookies;      // issued, in order
  std::map<std::uint64_t, Issued> issued;
  double now = 0;
  crypto::Key psk{};
  psk[0] = 7;
  path_auth::PathKey keys[2] = {path_auth::derive(psk), path_auth::derive(psk)};

  auto pick_cookie = [&](std::uint8_t choice) -> std::uint64_t {
    if (choice == 0xff || cookies.empty()) return choice;  // made up (0: a plain request)
    return cookies[choice % cookies.size()];
  };
  auto is_path = [&](std::size_t peer, std::size_t socket, const base::Endpoint& from) {
    for (const auto& p : paths[peer])
      if (p.socket == socket && p.remote == from) return true;
    return false;
  };
  // Checks one answer of the learner to an input from `from` on `socket` for `peer`.
  auto check_answer = [&](std::size_t peer, std::size_t socket, const base::Endpoint& from,
                          std::uint64_t request_cookie, const PathLearner::Answer& a) {
    if (a.commit) {
      const PathLearner::Commit& c = *a.commit;
      auto it = issued.find(request_cookie);
      check(request_cookie != 0 && it != issued.end());
      check(it->second.peer == peer && it->second.socket == socket && it->second.to == from);
      check(c.remote == from && c.socket == socket);
      if (c.kind == PathLearner::Commit::Kind::moved) {
        check(c.path < paths[peer].size());
        paths[peer][c.path].remote = c.remote;
      } else if (c.kind == PathLearner::Commit::Kind::added) {
        check(c.path == paths[peer].size());
        paths[peer].push_back({c.socket, c.remote, c.learned_id});
      }
      check(paths[peer].size() <= PathLearner::kMaxPaths);
    }
    if (a.echo) {
      const PathLearner::Echo& e = *a.echo;
      check(e.socket == socket && e.to == from);
      if (e.challenge()) {
        cookies.push_back(e.probe.cookie);
        issued[e.probe.cookie] = {peer, socket, from};
      } else {
        check(is_path(peer, socket, from));
      }
    }
    check(learner.candidates(peer) <= PathLearner::kMaxCandidates);
    check(learner.challenges_in_window(peer) <= PathLearner::kChallengesPerPeerPerSecond);
  };

  for (int ops = 0; ops < 2000 && !in.empty(); ++ops) {
    std::uint8_t op = in.byte() % 5;
    switch (op) {
      case 0: {
        std::size_t len = in.byte() % 80;
        std::vector<std::uint8_t> bytes;
        for (std::size_t i = 0; i < len; ++i) bytes.push_back(in.byte());
        if (len == path_auth::kSize && in.byte() & 1) {
          // A well-formed probe of either key, so verify() also sees valid MACs.
          path_auth::Probe probe;
          probe.kind = (bytes[0] & 1) ? path_auth::kRequest : path_auth::kEcho;
          probe.cookie = bytes[1];
          auto enc = path_auth::encode(probe, keys[bytes[2] & 1]);
          bytes.assign(enc.begin(), enc.end());
        }
        if (auto p = path_auth::parse(bytes)) {
          (void)p;
          for (const auto& k : keys) (void)path_auth::verify(bytes, k);
        }
        break;
      }
      case 1: {
        std::size_t peer = in.byte() & 1, socket = in.byte() & 1;
        const base::Endpoint& from = pool()[in.byte() % pool().size()];
        path_auth::Probe request;
        request.kind = path_auth::kRequest;
        request.path_id = in.byte();
        request.seq = in.byte();
        request.cookie = pick_cookie(in.byte());
        auto a = learner.on_request(peer, paths[peer], socket, from, request, now);
        check_answer(peer, socket, from, request.cookie, a);
        break;
      }
      case 2: {
        std::size_t peer = in.byte() & 1, socket = in.byte() & 1;
        const base::Endpoint& from = pool()[in.byte() % pool().size()];
        auto a = learner.nominate(peer, socket, from, now);
        check(!a.commit);
        check_answer(peer, socket, from, 0, a);
        break;
      }
      case 3: {
        std::size_t peer = in.byte() & 1, socket = in.byte() & 1;
        const base::Endpoint& from = pool()[in.byte() % pool().size()];
        std::uint64_t cookie = pick_cookie(in.byte());
        if (cookie == 0) cookie = 1;
        if (auto i = learner.answer(peer, paths[peer], socket, from, cookie, now)) {
          check(*i < paths[peer].size());
          check(paths[peer][*i].socket == socket);
        }
        break;
      }
      case 4:
        now += in.byte() * 0.01;
        learner.expire(now);
        for (std::size_t peer = 0; peer < 2; ++peer)
          check(learner.candidates(peer) <= PathLearner::kMaxCandidates);
        break;
    }
  }
  return 0;
}
