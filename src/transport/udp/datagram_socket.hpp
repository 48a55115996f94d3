#pragma once
// The udp transport's edge to the network: a batch-shaped datagram socket, and the network that
// opens them and answers routing questions. Two implementations: the host's (udp_socket.hpp:
// UdpSocket, HostNetwork) and an in-memory one (fake_network.hpp) with which two transports talk
// inside one process, without root.
//
// Flow: the transport watches fd() for readability on its loop and then calls receive();
// outgoing datagrams are queue()d while usrsctp produces them and flush()ed once per loop
// iteration (before the loop blocks); probes and their echoes go out at once (send_now).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "src/base/endpoint.hpp"

namespace transport::udp {

struct UdpStats {
  std::uint64_t sent = 0, sent_bytes = 0, send_errors = 0;
  std::uint64_t gso_sends = 0;  // sends that carried several datagrams (UDP_SEGMENT)
  std::uint64_t received = 0, received_bytes = 0;
  // Sends the kernel refused as larger than the path MTU it knows (EMSGSIZE; EINVAL for a GSO
  // send whose segments are): the path MTU dropped (also counted in send_errors).
  std::uint64_t too_big = 0;
};

class DatagramSocket {
 public:
  virtual ~DatagramSocket() = default;

  // Readable (poll/libev) while datagrams wait to be received.
  virtual int fd() const = 0;
  virtual const base::Endpoint& local() const = 0;

  using Handler =
      std::function<void(const base::Endpoint& from, std::span<const std::uint8_t> datagram)>;
  // Reads up to `limit` datagrams that are ready, handing each to handler; returns how many.
  virtual std::size_t receive(const Handler& handler, std::size_t limit = 256) = 0;

  // Copies the datagram into the send queue; flush() sends the queue. The queue flushes itself
  // when full. A datagram that cannot be sent is counted and dropped (SCTP retransmits).
  // Returns the queued copy (empty if refused), which the caller may still edit until flush().
  virtual std::span<std::uint8_t> queue(const base::Endpoint& to,
                                        std::span<const std::uint8_t> datagram) = 0;
  // The same for a datagram made of a header and a body (copied one after the other).
  virtual std::span<std::uint8_t> queue(const base::Endpoint& to,
                                        std::span<const std::uint8_t> head,
                                        std::span<const std::uint8_t> body) = 0;
  virtual void flush() = 0;
  // Sends one small datagram at once, outside the queue (path probes and their echoes).
  // Returns 0 or the errno of the failed send; counted in the stats like queued datagrams.
  virtual int send_now(const base::Endpoint& to, std::span<const std::uint8_t> datagram) = 0;
  // Like send_now, but the datagram may be fragmented to the path MTU on its way (for the rare
  // datagram that cannot be made smaller: pmtu.hpp, must_fragment).
  virtual int send_fragmentable(const base::Endpoint& to,
                                std::span<const std::uint8_t> datagram) = 0;
  virtual bool has_queued() const = 0;
  virtual bool gso() const = 0;  // batches of equal datagrams leave as one send
  virtual bool gro() const = 0;  // batches arrive coalesced (split again by receive)
  virtual const UdpStats& stats() const = 0;
};

// What routing says about sending to remote (from local's address unless that is the wildcard
// or of another family): the source address it picks and the MTU towards remote; nullopt / 0
// when there is no route.
struct RouteView {
  std::optional<base::Endpoint> source;
  int mtu = 0;
};

class Network {
 public:
  virtual ~Network() = default;
  // A socket bound to local (address and port). fwmark: the mark that routes it around our own
  // TUN (0: none); buffer: send and receive buffer, bytes. Throws std::system_error naming the
  // address when it cannot be bound.
  virtual std::unique_ptr<DatagramSocket> open(const base::Endpoint& local, std::uint32_t fwmark,
                                               int buffer) = 0;
  virtual RouteView route(const base::Endpoint& remote, std::uint32_t fwmark,
                          const base::Endpoint* local = nullptr) = 0;
};

}  // namespace transport::udp
