#pragma once
// FakeNetwork: an in-memory network of datagram sockets (datagram_socket.hpp) on one event
// loop, so that transports talk to each other inside one process, without root. What happens
// to a datagram is decided when it is sent, from a seeded random generator (the same seed and
// the same sends give the same fates):
//   cut       the pair of addresses is cut (both ways): dropped
//   loss      dropped with this probability
//   duplicate delivered twice
//   reorder   held back and delivered after the next datagram to the same socket (or after
//             `delay` when none follows)
//   delay     delivered this many seconds later (loop timers); 0: at the end of the send
// A NAT rewrites the source of datagrams from an inside endpoint to its outside endpoint, and
// datagrams to the outside endpoint go to the inside one; changing the mapping is a NAT
// rebinding. A datagram to an address no socket is bound to is dropped (counted `unroutable`).
// A socket is readable (fd(): an eventfd) while datagrams wait in its inbox.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "src/base/endpoint.hpp"
#include "src/base/event_loop.hpp"
#include "src/transport/udp/datagram_socket.hpp"

namespace transport::udp {

struct FakeConditions {
  double loss = 0, duplicate = 0, reorder = 0;  // probabilities, 0..1
  double delay = 0;                             // seconds, one way
};

struct FakeNetworkStats {
  std::uint64_t sent = 0, delivered = 0, lost = 0, cut = 0, duplicated = 0, reordered = 0,
                unroutable = 0, too_big = 0;
};

class FakeSocket;

class FakeNetwork final : public Network {
 public:
  explicit FakeNetwork(base::EventLoop& loop, std::uint64_t seed = 1);
  ~FakeNetwork() override;

  std::unique_ptr<DatagramSocket> open(const base::Endpoint& local, std::uint32_t fwmark,
                                       int buffer) override;
  // The source is local when given (and not the wildcard), else the address of the socket that
  // shares the longest prefix with remote (as if each socket's address had a connected route);
  // the MTU is mtu().
  RouteView route(const base::Endpoint& remote, std::uint32_t fwmark,
                  const base::Endpoint* local = nullptr) override;

  void set_conditions(const FakeConditions& conditions) { conditions_ = conditions; }
  const FakeConditions& conditions() const { return conditions_; }
  // Cuts (or heals) every datagram between the two addresses (ports ignored), both ways.
  void cut(const base::Endpoint& a, const base::Endpoint& b, bool cut = true);
  // Datagrams from inside leave as from outside; datagrams to outside reach inside. A new
  // outside for the same inside replaces the old one (rebinding).
  void nat(const base::Endpoint& inside, const base::Endpoint& outside);
  // The largest datagram (IP packet: payload + 28 or 48 bytes of headers) that passes; larger
  // ones are refused at the sender with EMSGSIZE (counted too_big).
  void set_mtu(int mtu) { mtu_ = mtu; }
  int mtu() const { return mtu_; }
  const FakeNetworkStats& stats() const { return stats_; }
  // Sees every datagram sent (before its fate is decided), as an eavesdropper on the path would.
  using Tap = std::function<void(const base::Endpoint& from, const base::Endpoint& to,
                                 std::span<const std::uint8_t> bytes)>;
  void set_tap(Tap tap) { tap_ = std::move(tap); }

  // Used by FakeSocket: sends one datagram from `from`; 0 or an errno. fragmentable: past the
  // MTU too (as fragments that all arrive or none).
  int send(const base::Endpoint& from, const base::Endpoint& to,
           std::span<const std::uint8_t> bytes, bool fragmentable = false);
  void forget(FakeSocket* socket);

 private:
  struct Datagram {
    base::Endpoint from, to;
    std::vector<std::uint8_t> bytes;
  };
  struct Pending {
    double due;
    std::uint64_t order;
    Datagram datagram;
  };
  bool chance(double p);
  bool is_cut(const base::Endpoint& a, const base::Endpoint& b) const;
  void deliver(Datagram datagram);
  void schedule(Datagram datagram, double delay);
  void on_timer();

  base::EventLoop& loop_;
  std::mt19937_64 random_;
  FakeConditions conditions_;
  int mtu_ = 1500;
  FakeNetworkStats stats_;
  std::vector<FakeSocket*> sockets_;
  std::vector<std::pair<base::Endpoint, base::Endpoint>> cuts_;
  std::vector<std::pair<base::Endpoint, base::Endpoint>> nats_;  // inside, outside
  std::map<std::string, Datagram> held_;  // reordered, by destination: waits for the next one
  std::deque<Pending> pending_;           // delayed, in order of due time
  std::uint64_t order_ = 0;
  base::Timer timer_;
  double timer_due_ = -1;  // loop time timer_ fires at (-1: not armed)
  // Arms timer_ for `due` unless it fires earlier already: a datagram sent later never delays
  // one that is due sooner.
  void arm(double due);
  Tap tap_;
};

class FakeSocket final : public DatagramSocket {
 public:
  FakeSocket(FakeNetwork& network, const base::Endpoint& local);
  ~FakeSocket() override;

  int fd() const override { return event_fd_; }
  const base::Endpoint& local() const override { return local_; }
  std::size_t receive(const Handler& handler, std::size_t limit = 256) override;
  std::span<std::uint8_t> queue(const base::Endpoint& to,
                                std::span<const std::uint8_t> datagram) override;
  std::span<std::uint8_t> queue(const base::Endpoint& to, std::span<const std::uint8_t> head,
                                std::span<const std::uint8_t> body) override;
  void flush() override;
  int send_now(const base::Endpoint& to, std::span<const std::uint8_t> datagram) override;
  int send_fragmentable(const base::Endpoint& to, std::span<const std::uint8_t> datagram) override;
  bool has_queued() const override { return !queue_.empty(); }
  bool gso() const override { return false; }
  bool gro() const override { return false; }
  const UdpStats& stats() const override { return stats_; }

  // Used by FakeNetwork: a datagram arrives.
  void arrive(const base::Endpoint& from, std::span<const std::uint8_t> bytes);
  void detach() { network_ = nullptr; }

 private:
  int count_send(int err, std::size_t bytes);
  int send(const base::Endpoint& to, std::span<const std::uint8_t> datagram, bool fragmentable);
  FakeNetwork* network_;
  base::Endpoint local_;
  int event_fd_ = -1;
  UdpStats stats_;
  std::deque<std::pair<base::Endpoint, std::vector<std::uint8_t>>> queue_, inbox_;
};

}  // namespace transport::udp
