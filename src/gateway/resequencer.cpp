#include "src/gateway/resequencer.hpp"

#include <algorithm>
#include <cstdint>

namespace gateway {

namespace {
std::int32_t distance(std::uint32_t from, std::uint32_t to) {
  return static_cast<std::int32_t>(to - from);
}
}  // namespace

Resequencer::Resequencer(Options options, Sink sink) : options_(options), sink_(std::move(sink)) {
  std::size_t w = 1;
  while (w < std::max<std::size_t>(options_.window, 2)) w <<= 1;
  options_.window = w;
}

Resequencer::Stripe& Resequencer::stripe_of(std::uint64_t key, std::uint32_t seq, double now) {
  auto it = stripes_.find(key);
  if (it != stripes_.end()) return it->second;
  if (stripes_.size() >= options_.max_stripes) {
    auto idlest = std::min_element(
        stripes_.begin(), stripes_.end(),
        [](const auto& a, const auto& b) { return a.second.last_seen < b.second.last_seen; });
    while (idlest->second.held) skip_gap(idlest->second);
    stripes_.erase(idlest);
  }
  Stripe& s = stripes_[key];
  s.last_seen = now;
  if (seq < options_.window) return s;  // from 0: those before it are on their way
  // Joined mid-flow (forgotten, or the sender's stripe is old): the window's worth before it
  // may still come, late.
  s.next = seq;
  s.ring.resize(options_.window);
  for (std::uint32_t missing = seq - static_cast<std::uint32_t>(options_.window); missing != seq;
       ++missing) {
    Slot& slot = s.ring[missing & (options_.window - 1)];
    slot.skipped = true;
    slot.seq = missing;
  }
  return s;
}

void Resequencer::arrive(std::uint32_t peer, std::uint32_t stripe, std::uint32_t seq,
                         std::span<const std::uint8_t> packet,
                         const std::optional<tun::VnetHdr>& vnet, double now) {
  Stripe& s = stripe_of(std::uint64_t{peer} << 32 | stripe, seq, now);
  s.last_seen = now;
  for (;;) {
    std::int32_t ahead = distance(s.next, seq);
    if (ahead < 0) {
      bool late = false;
      if (!s.ring.empty()) {
        Slot& slot = s.ring[seq & (options_.window - 1)];
        late = slot.skipped && slot.seq == seq;
        if (late) slot.skipped = false;
      }
      if (late) {
        ++stats_.late;
        sink_(packet, vnet);
      } else {
        ++stats_.duplicates;
      }
      return;
    }
    if (ahead == 0) {
      ++stats_.in_order;
      ++s.next;
      sink_(packet, vnet);
      if (s.held) drain(s);
      return;
    }
    if (static_cast<std::size_t>(ahead) < options_.window &&
        s.held_bytes + packet.size() <= options_.max_bytes &&
        held_bytes_ + packet.size() <= options_.max_total_bytes)
      break;
    if (s.held) {  // no room past the gap: give it up
      skip_gap(s);
      continue;
    }
    // Nothing held and still no room (too far ahead, or the others hold all there is): the
    // packets before it are lost or late.
    skip_to(s, seq);
  }
  if (s.ring.empty()) s.ring.resize(options_.window);
  Slot& slot = s.ring[seq & (options_.window - 1)];
  if (slot.used) {  // the same seq (the window holds no two seqs on one slot)
    ++stats_.duplicates;
    return;
  }
  slot.used = true;
  slot.skipped = false;
  slot.seq = seq;
  slot.arrived = now;
  slot.bytes.assign(packet.begin(), packet.end());
  slot.vnet = vnet;
  ++s.held;
  ++held_packets_;
  s.held_bytes += packet.size();
  held_bytes_ += packet.size();
  if (s.gap_since < 0) s.gap_since = now;
}

void Resequencer::release(Stripe& s, Slot& slot) {
  slot.used = false;
  --s.held;
  --held_packets_;
  s.held_bytes -= slot.bytes.size();
  held_bytes_ -= slot.bytes.size();
  ++stats_.held;
  sink_(slot.bytes, slot.vnet);
}

void Resequencer::drain(Stripe& s) {
  const std::size_t mask = options_.window - 1;
  for (Slot* slot = &s.ring[s.next & mask]; s.held && slot->used && slot->seq == s.next;
       slot = &s.ring[s.next & mask]) {
    ++s.next;
    release(s, *slot);
  }
  s.gap_since = -1;
  if (!s.held) return;
  // The next gap: its deadline counts from the arrival of the first packet after it.
  for (std::uint32_t seq = s.next + 1; distance(s.next, seq) < static_cast<std::int32_t>(mask + 1);
       ++seq) {
    const Slot& slot = s.ring[seq & mask];
    if (slot.used && slot.seq == seq) {
      s.gap_since = slot.arrived;
      return;
    }
  }
}

void Resequencer::skip_gap(Stripe& s) {
  const std::size_t mask = options_.window - 1;
  std::uint32_t seq = s.next;
  while (!(s.ring[seq & mask].used && s.ring[seq & mask].seq == seq)) ++seq;
  skip_to(s, seq);
  drain(s);
}

void Resequencer::skip_to(Stripe& s, std::uint32_t seq) {
  const std::size_t mask = options_.window - 1;
  if (s.ring.empty()) s.ring.resize(options_.window);
  // Marked, so that they are told apart from duplicates should they still come. Beyond a window
  // back they could not be: only the last window's worth is marked.
  std::uint32_t from = distance(s.next, seq) > static_cast<std::int32_t>(mask + 1)
                           ? seq - static_cast<std::uint32_t>(mask + 1)
                           : s.next;
  for (std::uint32_t missing = from; missing != seq; ++missing) {
    Slot& slot = s.ring[missing & mask];
    slot.skipped = true;
    slot.seq = missing;
  }
  ++stats_.gaps_skipped;
  stats_.packets_skipped += static_cast<std::uint32_t>(distance(s.next, seq));
  s.next = seq;
}

void Resequencer::expire(double now) {
  for (auto it = stripes_.begin(); it != stripes_.end();) {
    Stripe& s = it->second;
    while (s.held && s.gap_since >= 0 && now - s.gap_since >= options_.hold) skip_gap(s);
    if (!s.held && now - s.last_seen >= options_.idle) {
      it = stripes_.erase(it);
    } else {
      ++it;
    }
  }
}

void Resequencer::release_peer(std::uint32_t peer) {
  for (auto it = stripes_.begin(); it != stripes_.end();) {
    if (it->first >> 32 != peer) {
      ++it;
      continue;
    }
    while (it->second.held) skip_gap(it->second);
    it = stripes_.erase(it);
  }
}

}  // namespace gateway
