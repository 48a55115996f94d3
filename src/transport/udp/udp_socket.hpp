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
#include "src/transport/udp/datagram_socket.hpp"

namespace transport::udp {

class UdpSocket final : public DatagramSocket {
 public:
  // Binds to local (address and port); a non-zero fwmark is set as SO_MARK, so the host routes
  // our datagrams by its bypass rules and never into our own TUN. Throws std::system_error
  // naming the address. Path MTU discovery "do" (IP_PMTUDISC_DO, IPV6_PMTUDISC_DO): DF on every
  // datagram, never fragmented here; one larger than the path MTU the kernel knows is refused
  // (too_big). (With the kernel's default, "want", a UDP GSO batch leaves without DF.)
  // buffer: the socket's send and receive buffer, bytes (forced past the sysctl limits where
  // we may: a burst arriving faster than we read must not be dropped).
  explicit UdpSocket(const base::Endpoint& local, std::uint32_t fwmark = 0, int buffer = 4 << 20);
  ~UdpSocket() override;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const override { return fd_; }
  const base::Endpoint& local() const override { return local_; }

  // Reads up to `limit` datagrams that are ready, handing each to handler; returns how many.
  std::size_t receive(const Handler& handler, std::size_t limit = 256) override;

  // Copies the datagram into the send queue; flush() sends the queue. The queue flushes itself
  // when full. A datagram the kernel refuses is counted and dropped (SCTP retransmits).
  // Returns the queued copy (empty if refused), which the caller may still edit until flush().
  std::span<std::uint8_t> queue(const base::Endpoint& to,
                                std::span<const std::uint8_t> datagram) override;
  // The same for a datagram made of a header and a body (copied one after the other).
  std::span<std::uint8_t> queue(const base::Endpoint& to, std::span<const std::uint8_t> head,
                                std::span<const std::uint8_t> body) override;
  void flush() override;
  // Sends one small datagram at once, outside the queue (path probes and their echoes).
  // Returns 0 or the errno of the failed send; counted in the stats like queued datagrams.
  int send_now(const base::Endpoint& to, std::span<const std::uint8_t> datagram) override;
  // Like send_now, but the kernel may fragment it to the path MTU (IP_PMTUDISC_WANT for this one
  // send): for the rare datagram that cannot be made smaller (src/pmtu.hpp, must_fragment).
  int send_fragmentable(const base::Endpoint& to, std::span<const std::uint8_t> datagram) override;
  bool has_queued() const override { return queued_ > 0; }
  bool gso() const override { return gso_; }
  bool gro() const override { return gro_; }
  const UdpStats& stats() const override { return stats_; }

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

// What the host's routing says about sending to remote from a socket marked fwmark (see
// RouteView). Asked with a throwaway connected UDP socket.
RouteView route_to(const base::Endpoint& remote, std::uint32_t fwmark,
                   const base::Endpoint* local = nullptr);

// The host's network: UdpSocket and route_to.
class HostNetwork final : public Network {
 public:
  std::unique_ptr<DatagramSocket> open(const base::Endpoint& local, std::uint32_t fwmark,
                                       int buffer) override {
    return std::make_unique<UdpSocket>(local, fwmark, buffer);
  }
  RouteView route(const base::Endpoint& remote, std::uint32_t fwmark,
                  const base::Endpoint* local) override {
    return route_to(remote, fwmark, local);
  }
};

}  // namespace transport::udp
