#pragma once
// The sending side of FEC below SCTP, one per path (local socket + remote): numbers every
// outgoing SCTP packet with a DATA header and adds Reed–Solomon parity datagrams (src/fec_wire.hpp)
// per block of consecutive protected packets. Pure: no sockets, no clock (time is passed in as
// seconds), outputs through callbacks.
//
// Blocks: with redundancy r > 0 a block opens at the first packet and closes when it holds
// max_data packets (in add) or is older than max_block_age (in flush); a block of n packets gets
// m = ceil(n * r) parity datagrams (at most kMaxParity), emitted when it closes. A block closed by
// add() emits its parity during that call, before the caller has sent the block's last DATA
// datagram: the caller sends that datagram first, then the parity (a receiver that sees the
// parity first takes the last datagram for lost and rebuilds it, which costs work and skews its
// loss counters).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "src/crypto/session.hpp"
#include "src/fec/code.hpp"
#include "src/fec/wire.hpp"

namespace fec {

// Receives one datagram to send on the path (valid only during the call).
using Emit = std::function<void(std::span<const std::uint8_t> datagram)>;

struct SenderOptions {
  std::size_t max_data = 32;     // packets per block, clamped to 1..kMaxData
  double max_block_age = 0.002;  // seconds a block stays open at most
  // The first sequence number; random when unset, so that a restarted sender's numbers are far
  // from its predecessor's (the receiver resynchronises on a far jump).
  std::optional<std::uint32_t> first_seq = std::nullopt;
};

class Sender {
 public:
  explicit Sender(const crypto::Key& key, SenderOptions options = {});
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Parity per data datagram, clamped to 0..0.5; takes effect at the next block. With r == 0
  // packets are numbered only (kind 4) and no parity is sent.
  void set_redundancy(double r);
  double redundancy() const { return redundancy_; }
  // The parity count of a block by its size instead: m_for_n[n] parity datagrams for a block of n
  // packets (clamped to 1..kMaxParity when not 0; a block closed by age is small and needs more
  // parity per packet for the same residual loss). All zero: numbering only, as with r == 0.
  // Takes effect at the next block; set_redundancy() goes back to the ceil(n * r) rule.
  using ParityTable = std::array<std::uint8_t, wire::kMaxData + 1>;
  void set_parity_table(const ParityTable& m_for_n);

  // Registers one outgoing SCTP packet: writes the DATA header into header_out (the caller sends
  // header + packet as one datagram). With r > 0 the packet is copied into the open block; a
  // full block is closed at once and its parity goes to emit (to be sent after this packet). A
  // packet longer than kMaxPacket is numbered only (kind 4), after the open block was closed
  // (its parity to be sent before this packet).
  void add(std::span<const std::uint8_t> packet, std::uint8_t header_out[wire::kDataHeader],
           double now, const Emit& emit);
  // Closes the open block if it is older than max_block_age (or force): its parity to emit.
  void flush(double now, bool force, const Emit& emit);
  // When flush(now, false) would close the open block; nullopt when none is open.
  std::optional<double> next_deadline() const;

  struct Stats {
    std::uint64_t data = 0;    // DATA datagrams (both kinds)
    std::uint64_t parity = 0;  // PARITY datagrams emitted
    std::uint64_t blocks = 0;  // blocks whose parity was emitted
  };
  const Stats& stats() const { return stats_; }

 private:
  void close(const Emit& emit);

  crypto::Key key_;
  SenderOptions options_;
  double redundancy_ = 0;
  bool use_table_ = false;
  ParityTable table_{};
  std::uint32_t next_seq_ = 0;
  Codec codec_;

  // The open block.
  std::size_t count_ = 0;        // packets in it (0: no open block)
  double block_redundancy_ = 0;  // r when it opened
  std::uint32_t first_ = 0;
  std::size_t longest_ = 0;
  double opened_ = 0;
  // max_data symbol buffers, reused; lengths_[i] = kSymbolPrefix + packet i's length.
  std::vector<std::vector<std::uint8_t>> symbols_;
  std::vector<std::size_t> lengths_;
  std::vector<std::vector<std::uint8_t>> parity_;  // kMaxParity datagram buffers, reused

  Stats stats_;
};

}  // namespace fec
