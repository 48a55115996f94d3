#pragma once
// UdpSocket: one non-blocking UDP socket bound to a local WAN address. Outgoing datagrams are
// queued and sent in one sendmmsg() per flush(), runs of equal-sized datagrams to one
// destination coalesced with UDP GSO (UDP_SEGMENT); incoming ones are read in batches
// (recvmmsg) with UDP GRO, coalesced buffers split back into datagrams. Without kernel support
// for GSO or GRO (probed at construction) the plain paths are used.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

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

class UdpSocket {
 public:
  // Binds to local (address and port); a non-zero fwmark is set as SO_MARK, so the host routes
  // our datagrams by its bypass rules and never into our own TUN. Throws std::system_error
  // naming the address. Path MTU discovery "do" (IP_PMTUDISC_DO, IPV6_PMTUDISC_DO): DF on every
  // datagram, never fragmented here; one larger than the path MTU the kernel knows is refused
  // (too_big). (With the kernel's default, "want", a UDP GSO batch leaves without DF.)
  // buffer: the socket's send and receive buffer, bytes (forced past the sysctl limits where
  // we may: a burst arriving faster than we read must not be dropped).
  explicit UdpSocket(const base::Endpoint& local, std::uint32_t fwmark = 0, int buffer = 4 << 20);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const { return fd_; }
  const base::Endpoint& local() const { return local_; }

  using Handler = std::function<void(const base::Endpoint& from, std::span<const std::uint8_t> datagram)>;
  // Reads up to `limit` datagrams that are ready, handing each to handler; returns how many.
  std::size_t receive(const Handler& handler, std::size_t limit = 256);

  // Copies the datagram into the send queue; flush() sends the queue. The queue flushes itself
  // when full. A datagram the kernel refuses is counted and dropped (SCTP retransmits).
  // Returns the queued copy (empty if refused), which the caller may still edit until flush().
  std::span<std::uint8_t> queue(const base::Endpoint& to, std::span<const std::uint8_t> datagram);
  // The same for a datagram made of a header and a body (copied one after the other).
  std::span<std::uint8_t> queue(const base::Endpoint& to, std::span<const std::uint8_t> head,
                                std::span<const std::uint8_t> body);
  void flush();
  // Sends one small datagram at once, outside the queue (path probes and their echoes).
  // Returns 0 or the errno of the failed send; counted in the stats like queued datagrams.
  int send_now(const base::Endpoint& to, std::span<const std::uint8_t> datagram);
  // Like send_now, but the kernel may fragment it to the path MTU (IP_PMTUDISC_WANT for this one
  // send): for the rare datagram that cannot be made smaller (src/pmtu.hpp, must_fragment).
  int send_fragmentable(const base::Endpoint& to, std::span<const std::uint8_t> datagram);
  bool has_queued() const { return queued_ > 0; }
  bool gso() const { return gso_; }
  bool gro() const { return gro_; }
  const UdpStats& stats() const { return stats_; }

 private:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kMaxDatagram = 65536;
  int fd_ = -1;
  base::Endpoint local_;
  UdpStats stats_;
  // Send queue: kBatch slots of kMaxDatagram bytes; [0, queued_) are waiting.
  std::vector<std::uint8_t> send_buf_;
  std::vector<base::Endpoint> send_to_;
  std::vector<std::size_t> send_len_;
  std::size_t queued_ = 0;
  bool gso_ = false, gro_ = false;
  std::vector<std::uint8_t> recv_buf_;
};

// What the host's routing says about sending to remote from a socket marked fwmark (bound to
// local's address unless that is the wildcard or of another family): the source address it
// picks and the MTU towards remote (the route's, or the PMTU the kernel learned from ICMP).
// Asked with a throwaway connected UDP socket; nullopt / 0 when there is no route.
struct RouteView {
  std::optional<base::Endpoint> source;
  int mtu = 0;
};
RouteView route_to(const base::Endpoint& remote, std::uint32_t fwmark, const base::Endpoint* local = nullptr);

}  // namespace transport::udp
