#pragma once
// Resequencer: the receiving end of striped flows (wire.hpp, SEQUENCED). A striped flow's
// packets travel on several associations, one per path, so they arrive out of the order they
// were sent in; each is rebuilt on its own stream first (decompressed, checked), then handed
// here with its stripe and seq, and leaves through the sink in seq order. Pure logic: time is
// passed in, the sink is the only output.
//
//  - A packet at the stripe's next seq goes to the sink at once (no copy), and so do the held
//    packets that follow it without a gap.
//  - A packet past a gap is held (copied) until the gap fills; SCTP is reliable, so a gap is a
//    packet still on its way on a slower path, or being sent again.
//  - A gap that is older than `hold` (an association that died with packets in flight), or a
//    stripe over its `window` or `max_bytes`, is skipped: the held packets after it leave in
//    order, and the missing ones, should they still come, leave as they arrive ("late").
//  - A packet before the next seq: if it is one of a skipped gap, or of the window before a
//    stripe's start (late), it leaves at once (the inner protocol copes with a reordered packet
//    better than with a lost one); else, like a second copy of a held one, it is a duplicate:
//    dropped.
//  - A stripe's first packet sets its start: seq 0 unless the first seq is beyond the window
//    (the stripe was forgotten mid-flow), then that one. Stripes idle for `idle` are forgotten;
//    at most max_stripes are kept (then the one idle longest goes).
//  - All stripes together hold at most max_total_bytes: past it, the stripe a packet arrives for
//    gives up its gap (or, holding nothing, lets the packet through as if its gap were given up).
//  Bounds, against a peer that opens stripes and gaps on purpose too: held bytes max_total_bytes;
//  slots (about 64 bytes each, made when a stripe first holds) max_stripes * window.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "tun/vnet.hpp"

namespace gateway {

class Resequencer {
 public:
  struct Options {
    double hold = 0.3;                       // seconds a packet waits for an earlier one
    std::size_t window = 2048;               // packets a stripe may hold (a power of two)
    std::size_t max_bytes = 8 << 20;         // bytes a stripe may hold
    std::size_t max_total_bytes = 64 << 20;  // bytes all stripes together may hold
    std::size_t max_stripes = 256;
    double idle = 120;  // seconds without a packet after which a stripe is forgotten
  };
  struct Stats {
    std::uint64_t in_order = 0;  // left at once
    std::uint64_t held = 0;      // waited for an earlier packet (left later)
    std::uint64_t gaps_skipped = 0, packets_skipped = 0;  // gaps given up, packets in them
    std::uint64_t late = 0;        // arrived after their gap was skipped (left as they came)
    std::uint64_t duplicates = 0;  // dropped
  };
  using Sink =
      std::function<void(std::span<const std::uint8_t> packet, const std::optional<tun::VnetHdr>&)>;

  Resequencer(Options options, Sink sink);

  // Packet seq of the stripe `stripe` of peer `peer` arrived (rebuilt: an IP packet, or a
  // super-packet with its vnet header).
  void arrive(std::uint32_t peer, std::uint32_t stripe, std::uint32_t seq,
              std::span<const std::uint8_t> packet, const std::optional<tun::VnetHdr>& vnet,
              double now);
  // Skips the gaps older than hold, forgets idle stripes. Call often while holding() (every
  // hold / 10 or so).
  void expire(double now);
  // Forgets every stripe of peer, releasing what they hold in order (the peer is gone).
  void release_peer(std::uint32_t peer);
  bool holding() const { return held_packets_ > 0; }
  std::size_t held_packets() const { return held_packets_; }
  std::size_t held_bytes() const { return held_bytes_; }
  std::size_t stripes() const { return stripes_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Slot {
    bool used = false;     // holds packet seq
    bool skipped = false;  // seq was in a gap given up: it may still come, late
    std::uint32_t seq = 0;
    double arrived = 0;
    std::vector<std::uint8_t> bytes;
    std::optional<tun::VnetHdr> vnet;
  };
  struct Stripe {
    std::uint32_t next = 0;
    double last_seen = 0;
    double gap_since = -1;  // arrival of the held packet after the gap at next (-1: none held)
    std::size_t held = 0, held_bytes = 0;
    std::vector<Slot> ring;  // window slots, made when the stripe first holds a packet
  };

  Stripe& stripe_of(std::uint64_t key, std::uint32_t seq, double now);
  void release(Stripe& s, Slot& slot);
  // Delivers the held packets at next and after, without a gap; then notes the next gap.
  void drain(Stripe& s);
  // Gives up the gap at next: next moves to the first held packet, which leaves with those after.
  void skip_gap(Stripe& s);
  // Moves next to seq (nothing held before it), marking the seqs passed as skipped.
  void skip_to(Stripe& s, std::uint32_t seq);

  Options options_;
  Sink sink_;
  std::unordered_map<std::uint64_t, Stripe> stripes_;
  std::size_t held_packets_ = 0, held_bytes_ = 0;
  Stats stats_;
};

}  // namespace gateway
