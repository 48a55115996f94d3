#pragma once
// KernelTransport: SCTP in the Linux kernel through its socket API (lksctp-tools: libsctp,
// <netinet/sctp.h>), natively (IP protocol 132) or encapsulated in UDP by the kernel itself
// (RFC 6951, Linux 5.11 and later), which talks to a gateway on the udp transport (usrsctp).
//
//   start -> one one-to-many socket (SOCK_SEQPACKET) per pool slot i, bound (sctp_bindx) to every
//            local address on SCTP port base+i, listening, and sctp_connectx to every peer over all
//            its addresses (native multi-homing: the kernel supervises the paths)
//   socket readable -> recvmsg: a message (SCTP_RCVINFO: stream, association) goes to Events;
//            a notification (association change, peer address change, send failure) drives the
//            slot's state machine, the pool and `sctptund show`
//   send -> sendmsg with SCTP_SNDINFO (stream, association); EAGAIN -> would_block, and a write
//            watcher reports on_writable
//
// Association pool (assoc_pool.hpp): as with usrsctp, slot i of a peer is the association between
// our SCTP port base+i and the peer's port base+i; a Link is the pool's record of it with the
// kernel's association id. The slot's socket listens, so a peer's INIT is accepted at any time:
// two gateways meet whoever starts first, and an INIT collision becomes one association. An
// association from an address that is no peer's is aborted at once and counted
// (datagrams_unknown_source). A lost slot reconnects with backoff (the peer may connect sooner).
//
// Multi-homing: the kernel lists all local addresses in INIT / INIT-ACK and heartbeats every peer
// address. Failover comes from the same knobs as the udp transport: heartbeats every
// probe_interval_ms, RTO bounds from rto_*_ms, the potentially-failed state (SCTP_PEER_ADDR_THLDS:
// a path is PF after its first timeout and data moves at once to another path), and path max
// retransmissions sized from failover_ms. Peer address changes are logged and shown.
//
// IPv6: local and remote may be IPv6 addresses, with the families mixed across paths (one
// association with an IPv4 and an IPv6 path). Once any address is IPv6 the slot sockets are
// AF_INET6 and dual-stack; the IPv4 addresses the kernel hands back (peer address lists, path
// events, the primary path) are plain IPv4 (SCTP_I_WANT_MAPPED_V4_ADDR off, and v4-mapped ones
// unmapped), so they match the configured addresses. UDP encapsulation works over IPv6 as well.
//
// UDP encapsulation: the namespace's net.sctp.udp_port is the kernel's own UDP port (listening
// and source); it is read when an SCTP socket is created, so it is set (to the configured port)
// before the sockets are; the peers' UDP port is set with SCTP_REMOTE_UDP_ENCAPS_PORT.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/base/event_loop.hpp"
#include "src/base/rate_limit.hpp"
#include "src/transport/assoc_pool.hpp"
#include "src/transport/transport.hpp"

namespace transport::kernel {

struct KernelOptions : SctpOptions {
  bool udp_encapsulation = false;  // RFC 6951 by the kernel; our UDP port = sctp_port
};

// True if this kernel can make SCTP sockets; else false and why (the errno text).
bool kernel_sctp_available(std::string* why = nullptr);

class KernelTransport final : public Transport {
 public:
  // Throws std::system_error when the sockets cannot be made or bound (no SCTP in the kernel, an
  // address that is not ours, no UDP encapsulation in this kernel).
  KernelTransport(base::EventLoop& loop, KernelOptions options, std::vector<PeerEndpoints> peers);
  ~KernelTransport() override;

  void set_events(Events* events) override { pool_.set_events(events_ = events); }
  void start() override;
  SendResult send(AssocId assoc, std::uint16_t stream, std::span<const std::uint8_t> msg,
                  SendOptions options = {}) override;
  void abort(AssocId assoc, const char* reason) override;
  std::vector<AssocInfo> associations() const override;
  TransportStats stats() const override;
  const char* kind() const override { return options_.udp_encapsulation ? "kernel-udp" : "kernel"; }

  struct Link;
  struct SlotSocket;

 private:
  void open_slot_socket(std::size_t slot);
  void connect(Link& link);
  void on_readable(SlotSocket& socket);
  void on_notification(SlotSocket& socket, std::span<const std::uint8_t> bytes);
  void on_assoc_change(SlotSocket& socket, std::int32_t kassoc, AssocChange change,
                       std::uint16_t in_streams, std::uint16_t out_streams);
  void on_peer_addr_change(SlotSocket& socket, std::int32_t kassoc, const void* addr, int state);
  void link_down(Link& link, const char* why);
  void abort_kernel_assoc(SlotSocket& socket, std::int32_t kassoc, const char* reason);
  // The peer an association's addresses belong to, or nullptr.
  Link* link_for_new_assoc(SlotSocket& socket, std::int32_t kassoc, std::string* remote);
  Link* find_link(AssocId assoc) const;
  void note_unknown_source(const std::string& from);
  std::string primary_of(const Link& link) const;

  base::EventLoop& loop_;
  KernelOptions options_;
  std::vector<PeerEndpoints> peers_;
  Events* events_ = nullptr;
  std::vector<std::unique_ptr<SlotSocket>> sockets_;  // index = slot
  std::size_t slot_count_ = 1;                        // the largest pool of any peer
  AssocPool pool_;                                    // every slot of every peer
  std::vector<std::unique_ptr<Link>> links_;          // the pool's records, owned
  TransportStats stats_;
  base::RateLimit unknown_log_{10.0};
  // Of the "receive failed" line: whatever makes recvmsg fail may make it fail at each wakeup.
  base::RateLimit receive_error_log_{10.0};
  std::uint64_t receive_errors_unlogged_ = 0;
};

}  // namespace transport::kernel
