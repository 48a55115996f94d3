#pragma once
// The receiving side of FEC below SCTP, one per path: takes the DATA and PARITY datagrams
// (src/fec_wire.hpp) of one Sender, rebuilds lost data from parity, and delivers the SCTP packets
// in sequence order, so that usrsctp sees no gap that FEC can close. Pure: no sockets, no clock
// (time is passed in as seconds), outputs through callbacks.
//
// Sequence numbers (serial arithmetic): E is the next one to deliver. The first datagram ever, or
// one more than 1 << 16 away from E (a restarted sender), resynchronises E (what was held is
// delivered, its gaps given up). An arrival s:
//  - s == E with nothing held: delivered at once.
//  - s > E: the numbers in between not seen yet are a gap, counted in `lost` once. A protected
//    arrival (kind 1) is held, as is every later one, until the gap is rebuilt or given up; an
//    unprotected one (kind 4) gives up every gap before it at once and is delivered.
//  - s filling a gap: held (reordered), delivered when everything before it is.
//  - s already delivered or held: a duplicate, dropped. s given up before: delivered (`late`).
// Gaps are given up (`unrecovered`) `hold` seconds after they were first seen (on_timer), when
// all m parity of their block arrived and do not suffice, or when more than max_held packets are
// held (the oldest gap first); packets held behind a given-up gap are delivered in order up to
// the next gap, which keeps its own deadline.
// Every protected packet is kept (copied) while its block may still be rebuilt; a parity for
// [first, first + k) makes the block's unseen numbers a gap, and once the block has k of its
// k + m symbols its missing data is rebuilt (`rebuilt`, byte-identical) and delivered in order.
// Parity with a bad MAC is counted and never used. Buffers are reused: no allocation per packet
// once the largest burst of held packets has been seen. The callbacks must not call back into
// the Receiver.

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

struct ReceiverOptions {
  double hold = 0.005;          // seconds a gap holds later packets at most
  std::size_t max_held = 4096;  // packets held at most (clamped to 1 << 15)
};

class Receiver {
 public:
  explicit Receiver(const crypto::Key& key, ReceiverOptions options = {});
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // An SCTP packet for usrsctp (valid only during the call).
  using Deliver = std::function<void(std::span<const std::uint8_t> packet)>;

  // A DATA datagram (kind 1 or 4); anything else is counted `malformed` and dropped.
  void on_data(std::span<const std::uint8_t> datagram, double now, const Deliver& deliver);
  // A PARITY datagram; malformed ones count `malformed`, those with a bad MAC `parity_bad`.
  void on_parity(std::span<const std::uint8_t> datagram, double now, const Deliver& deliver);
  // Gives up the gaps whose hold time passed and delivers what they held.
  void on_timer(double now, const Deliver& deliver);
  // When on_timer has a gap to give up; nullopt when nothing is held.
  std::optional<double> next_deadline() const;

  struct Stats {
    // Cumulative, wrapping: the REPORT fields. received: DATA datagrams that arrived (not
    // duplicates); lost: numbers found missing (counted once, before recovery); rebuilt: of
    // those, rebuilt from parity; unrecovered: of those, given up; highest_seq: the highest
    // number seen (or known from a parity).
    std::uint32_t received = 0, lost = 0, rebuilt = 0, unrecovered = 0, highest_seq = 0;
    std::uint64_t parity_in = 0;   // parity datagrams with a valid MAC
    std::uint64_t parity_bad = 0;  // well-formed parity with a bad MAC
    std::uint64_t malformed = 0;
    std::uint64_t duplicates = 0;  // DATA already delivered or held
    std::uint64_t late = 0;        // DATA that arrived after its gap was given up
    std::uint64_t held_max = 0;    // the most packets held at once
    std::uint64_t reordered = 0;   // DATA that filled a gap before it was rebuilt or given up
    std::uint64_t stale = 0;       // DATA too far behind to tell (older than the history kept)
  };
  const Stats& stats() const { return stats_; }
  // The REPORT datagram of the current counters, MAC'd with the key.
  std::array<std::uint8_t, wire::kReportSize> report() const;

 private:
  enum class State : std::uint8_t { none, missing, given_up, held, delivered };
  struct Slot {
    std::uint32_t seq = 0;
    State state = State::none;
    std::uint16_t len = 0;  // packet length, when buf >= 0
    std::int32_t buf = -1;  // pool buffer: [length prefix][packet], or -1
    double deadline = 0;    // when missing: when it is given up
  };
  struct Block {
    bool used = false;
    std::uint32_t first = 0;
    std::uint8_t k = 0, m = 0, count = 0;
    std::uint16_t symbol_len = 0;
    std::array<std::int32_t, wire::kMaxParity> parity;  // pool buffers, -1 when missing
    Block() { parity.fill(-1); }
  };

  Slot& slot(std::uint32_t seq) { return slots_[seq & mask_]; }
  const Slot& slot(std::uint32_t seq) const { return slots_[seq & mask_]; }
  std::int32_t acquire(std::size_t size);
  void release(std::int32_t& buf);
  void store(Slot& s, std::span<const std::uint8_t> packet);

  void advance();
  void release_in_order(const Deliver& deliver);
  void give_up_gap(const Deliver& deliver);
  void drain(const Deliver& deliver);
  void enforce_limit(const Deliver& deliver);
  void mark_missing(std::uint32_t end, double now);
  void clear();
  void resync(std::uint32_t seq, const Deliver& deliver);
  void hold(Slot& s, std::span<const std::uint8_t> packet);

  Block* find_block(const wire::Parity& p);
  void free_block(Block& b);
  void try_decode(Block& b, const Deliver& deliver);
  void prune_blocks();

  crypto::Key key_;
  ReceiverOptions options_;
  Codec codec_;
  bool started_ = false;
  std::uint32_t next_ = 0;  // E: the next number to deliver
  std::uint32_t end_ = 0;   // one past the highest number seen: [next_, end_) is the window
  std::size_t held_ = 0;
  std::vector<Slot> slots_;  // a power of two, indexed by seq
  std::uint32_t mask_ = 0;
  std::uint32_t span_ = 0;  // the window is at most this long
  std::vector<std::vector<std::uint8_t>> pool_;
  std::vector<std::int32_t> free_;
  std::vector<Block> blocks_;
  std::size_t active_blocks_ = 0;
  Stats stats_;
};

}  // namespace fec
