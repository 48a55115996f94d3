#include "src/fec/receiver.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace fec {
namespace {

constexpr std::int32_t kResync = 1 << 16;  // |s - E| beyond this: a restarted sender
constexpr std::size_t kMaxHeld = std::size_t{1} << 15;
constexpr std::uint32_t kRetain = wire::kMaxData;  // delivered packets kept behind E
constexpr std::size_t kMaxBlocks = 64;             // blocks waiting for symbols
constexpr std::size_t kInitialBuffer = 2048;       // grows when a longer packet comes

std::int32_t diff(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b);
}

}  // namespace

Receiver::Receiver(const crypto::Key& key, ReceiverOptions options) : key_(key), options_(options) {
  options_.max_held = std::min(options_.max_held, kMaxHeld);
  std::size_t n = std::bit_ceil(options_.max_held + 2 * std::size_t{kRetain});
  slots_.resize(n);
  mask_ = static_cast<std::uint32_t>(n - 1);
  span_ = static_cast<std::uint32_t>(n - kRetain);
  // Every buffer ever in use at once: held packets (the limit is enforced after a rebuild adds
  // up to kMaxParity), retained ones, parity of waiting blocks, one packet being stored.
  std::size_t buffers =
      options_.max_held + kRetain + kMaxBlocks * wire::kMaxParity + 2 * wire::kMaxParity + 1;
  pool_.reserve(buffers);
  free_.reserve(buffers);
  blocks_.resize(kMaxBlocks);
}

std::array<std::uint8_t, wire::kReportSize> Receiver::report() const {
  return wire::encode_report(
      {stats_.highest_seq, stats_.received, stats_.lost, stats_.rebuilt, stats_.unrecovered}, key_);
}

std::optional<double> Receiver::next_deadline() const {
  if (next_ == end_ || !started_) return std::nullopt;
  const Slot& s = slot(next_);
  if (s.state != State::missing) return std::nullopt;
  return s.deadline;
}

// --- Buffers ---------------------------------------------------------------------------------

std::int32_t Receiver::acquire(std::size_t size) {
  std::int32_t buf;
  if (!free_.empty()) {
    buf = free_.back();
    free_.pop_back();
  } else {
    buf = static_cast<std::int32_t>(pool_.size());
    pool_.emplace_back(kInitialBuffer);
  }
  if (pool_[buf].size() < size) pool_[buf].resize(size);
  return buf;
}

void Receiver::release(std::int32_t& buf) {
  if (buf < 0) return;
  free_.push_back(buf);
  buf = -1;
}

void Receiver::store(Slot& s, std::span<const std::uint8_t> packet) {
  release(s.buf);
  s.buf = acquire(wire::kSymbolPrefix + packet.size());
  std::uint8_t* p = pool_[s.buf].data();
  wire::encode_symbol_prefix(packet.size(), p);
  if (!packet.empty()) std::memcpy(p + wire::kSymbolPrefix, packet.data(), packet.size());
  s.len = static_cast<std::uint16_t>(packet.size());
}

// --- The window ------------------------------------------------------------------------------

void Receiver::advance() {
  ++next_;
  std::uint32_t old = next_ - kRetain - 1;  // no block that can still be rebuilt includes it
  Slot& s = slot(old);
  if (s.seq == old) release(s.buf);
}

void Receiver::release_in_order(const Deliver& deliver) {
  while (next_ != end_) {
    Slot& s = slot(next_);
    if (s.state == State::missing) return;
    if (s.state == State::held) {
      s.state = State::delivered;
      --held_;
      advance();
      deliver({pool_[s.buf].data() + wire::kSymbolPrefix, s.len});
    } else {
      advance();
    }
  }
}

void Receiver::give_up_gap(const Deliver& deliver) {
  while (next_ != end_ && slot(next_).state == State::missing) {
    slot(next_).state = State::given_up;
    ++stats_.unrecovered;
    advance();
  }
  release_in_order(deliver);
}

void Receiver::drain(const Deliver& deliver) {
  release_in_order(deliver);
  while (next_ != end_) give_up_gap(deliver);
}

void Receiver::enforce_limit(const Deliver& deliver) {
  while (held_ > options_.max_held && next_ != end_) give_up_gap(deliver);
  stats_.held_max = std::max<std::uint64_t>(stats_.held_max, held_);
}

void Receiver::mark_missing(std::uint32_t end, double now) {
  for (; end_ != end; ++end_) {
    Slot& s = slot(end_);
    release(s.buf);
    s.seq = end_;
    s.state = State::missing;
    s.deadline = now + options_.hold;
    ++stats_.lost;
  }
  stats_.highest_seq = end_ - 1;
}

void Receiver::clear() {
  for (Slot& s : slots_) {
    release(s.buf);
    s = Slot{};
  }
  for (Block& b : blocks_)
    if (b.used) free_block(b);
  held_ = 0;
}

void Receiver::resync(std::uint32_t seq, const Deliver& deliver) {
  if (started_) drain(deliver);
  clear();
  started_ = true;
  next_ = end_ = seq;
}

void Receiver::hold(Slot& s, std::span<const std::uint8_t> packet) {
  store(s, packet);
  s.state = State::held;
  ++held_;
}

// --- DATA ------------------------------------------------------------------------------------

void Receiver::on_data(std::span<const std::uint8_t> datagram, double now, const Deliver& deliver) {
  auto data = wire::parse_data(datagram);
  if (!data) {
    ++stats_.malformed;
    return;
  }
  const std::uint32_t seq = data->seq;
  if (!started_ || diff(seq, next_) > kResync || diff(seq, next_) < -kResync) resync(seq, deliver);

  if (diff(seq, next_) < 0) {  // behind the window
    Slot& s = slot(seq);
    if (s.seq != seq || s.state == State::none) {
      ++stats_.stale;
    } else if (s.state == State::given_up) {
      ++stats_.late;
      ++stats_.received;
      s.state = State::delivered;
      deliver(data->packet);
    } else {
      ++stats_.duplicates;
    }
    return;
  }

  if (diff(seq, end_) < 0) {  // within the window: fills a gap, or a duplicate
    Slot& s = slot(seq);
    if (s.seq != seq || (s.state != State::missing && s.state != State::given_up)) {
      ++stats_.duplicates;
      return;
    }
    ++(s.state == State::missing ? stats_.reordered : stats_.late);
    ++stats_.received;
    hold(s, data->packet);
    if (seq == next_) release_in_order(deliver);
    if (active_blocks_)
      for (Block& b : blocks_)
        if (b.used && diff(seq, b.first) >= 0 && diff(seq, b.first) < b.k) try_decode(b, deliver);
    enforce_limit(deliver);
    prune_blocks();
    return;
  }

  // A new highest number.
  ++stats_.received;
  while (diff(seq, next_) >= static_cast<std::int32_t>(span_) && next_ != end_)
    give_up_gap(deliver);
  if (diff(seq, next_) >= static_cast<std::int32_t>(span_)) {
    // A gap longer than the window: nothing is held; given up whole.
    std::uint32_t gap = seq - end_;
    stats_.lost += gap;
    stats_.unrecovered += gap;
    clear();
    next_ = end_ = seq;
  }
  mark_missing(seq, now);
  if (!data->is_protected) drain(deliver);
  Slot& s = slot(seq);
  release(s.buf);
  s.seq = seq;
  ++end_;
  stats_.highest_seq = seq;
  if (next_ == seq) {
    if (data->is_protected) store(s, data->packet);  // kept for its block's parity
    s.state = State::delivered;
    advance();
    deliver(data->packet);
  } else {
    hold(s, data->packet);
    enforce_limit(deliver);
  }
  prune_blocks();
}

// --- PARITY ----------------------------------------------------------------------------------

void Receiver::on_parity(std::span<const std::uint8_t> datagram, double now,
                         const Deliver& deliver) {
  auto parity = wire::parse_parity(datagram);
  if (!parity) {
    ++stats_.malformed;
    return;
  }
  if (!wire::verify(datagram, key_)) {
    ++stats_.parity_bad;
    return;
  }
  ++stats_.parity_in;
  if (!started_) return;
  const std::uint32_t first = parity->first, end = first + parity->k;
  const std::int32_t from_next = diff(first, next_);
  if (from_next > kResync || from_next < -kResync || diff(end, next_) <= 0 ||
      diff(end - 1, next_) >= static_cast<std::int32_t>(span_))
    return;  // complete or given up long ago, or further ahead than the window can reach

  // Anything still to rebuild: a number not seen yet, or a gap (not yet given up)?
  bool wanted = diff(end, end_) > 0;
  for (std::uint32_t seq = first; !wanted && seq != end; ++seq) {
    const Slot& s = slot(seq);
    wanted = s.seq == seq && s.state == State::missing;
  }
  if (!wanted) return;
  if (diff(end, end_) > 0) mark_missing(end, now);

  Block* b = find_block(*parity);
  if (b->parity[parity->index] >= 0) return;  // a duplicate
  std::int32_t& buf = b->parity[parity->index];
  buf = acquire(parity->symbol.size());
  std::memcpy(pool_[buf].data(), parity->symbol.data(), parity->symbol.size());
  ++b->count;
  try_decode(*b, deliver);
  prune_blocks();
}

Receiver::Block* Receiver::find_block(const wire::Parity& p) {
  Block* unused = nullptr;
  Block* oldest = nullptr;
  for (Block& b : blocks_) {
    if (!b.used) {
      if (!unused) unused = &b;
      continue;
    }
    if (b.first == p.first) {
      if (b.k == p.k && b.m == p.m && b.symbol_len == p.symbol.size()) return &b;
      free_block(b);  // another block under the same number: the newer wins
      unused = &b;
      break;
    }
    if (!oldest || diff(b.first, oldest->first) < 0) oldest = &b;
  }
  Block* b = unused;
  if (!b) {
    b = oldest;
    free_block(*b);
  }
  b->used = true;
  b->first = p.first;
  b->k = p.k;
  b->m = p.m;
  b->count = 0;
  b->symbol_len = static_cast<std::uint16_t>(p.symbol.size());
  ++active_blocks_;
  return b;
}

void Receiver::free_block(Block& b) {
  for (std::int32_t& buf : b.parity) release(buf);
  b.used = false;
  --active_blocks_;
}

void Receiver::prune_blocks() {
  if (!active_blocks_) return;
  for (Block& b : blocks_)
    if (b.used && diff(b.first + b.k, next_) <= 0) free_block(b);
}

void Receiver::try_decode(Block& b, const Deliver& deliver) {
  const std::size_t k = b.k, len = b.symbol_len;
  std::array<const std::uint8_t*, wire::kMaxData> data{};
  std::array<std::uint8_t*, wire::kMaxData> out{};
  std::array<std::int32_t, wire::kMaxData> out_buf;
  std::array<std::int32_t, wire::kMaxData> present_buf;
  std::size_t present = 0, targets = 0;
  for (std::size_t i = 0; i < k; ++i) {
    std::uint32_t seq = b.first + static_cast<std::uint32_t>(i);
    Slot& s = slot(seq);
    present_buf[i] = -1;
    out_buf[i] = -1;
    if (s.seq != seq) continue;
    if (s.buf >= 0 && wire::kSymbolPrefix + s.len <= len) {
      present_buf[i] = s.buf;
      ++present;
    } else if (s.state == State::missing) {
      ++targets;
    }
  }
  if (targets == 0) {
    free_block(b);
    return;
  }
  if (present + b.count < k) {
    if (b.count == b.m) {  // every parity arrived, and they do not suffice
      for (std::size_t i = 0; i < k; ++i) {
        Slot& s = slot(b.first + static_cast<std::uint32_t>(i));
        if (s.seq == b.first + i && s.state == State::missing) {
          s.state = State::given_up;
          ++stats_.unrecovered;
        }
      }
      free_block(b);
      release_in_order(deliver);
    }
    return;
  }

  // Buffers first (acquiring may move the pool's vectors), then pointers into them.
  for (std::size_t i = 0; i < k; ++i) {
    std::uint32_t seq = b.first + static_cast<std::uint32_t>(i);
    const Slot& s = slot(seq);
    if (present_buf[i] < 0 && s.seq == seq && s.state == State::missing) out_buf[i] = acquire(len);
  }
  for (std::size_t i = 0; i < k; ++i) {
    if (present_buf[i] >= 0) {
      std::vector<std::uint8_t>& symbol = pool_[present_buf[i]];
      if (symbol.size() < len) symbol.resize(len);
      std::size_t used = wire::kSymbolPrefix + slot(b.first + static_cast<std::uint32_t>(i)).len;
      std::memset(symbol.data() + used, 0, len - used);
      data[i] = symbol.data();
    }
    if (out_buf[i] >= 0) out[i] = pool_[out_buf[i]].data();
  }
  std::array<const std::uint8_t*, wire::kMaxParity> parity{};
  for (std::size_t p = 0; p < b.m; ++p)
    if (b.parity[p] >= 0) parity[p] = pool_[b.parity[p]].data();

  bool ok = codec_.decode({data.data(), k}, {parity.data(), b.m}, {out.data(), k}, len);
  for (std::size_t i = 0; i < k; ++i) {
    if (out_buf[i] < 0) continue;
    auto packet = ok ? wire::symbol_packet({out[i], len}) : std::nullopt;
    if (!packet) {  // not a symbol: the block's data did not match its parity
      release(out_buf[i]);
      continue;
    }
    Slot& s = slot(b.first + static_cast<std::uint32_t>(i));
    s.buf = out_buf[i];
    s.len = static_cast<std::uint16_t>(packet->size());
    s.state = State::held;
    ++held_;
    ++stats_.rebuilt;
  }
  free_block(b);
  release_in_order(deliver);
  enforce_limit(deliver);
}

// --- Timer -----------------------------------------------------------------------------------

void Receiver::on_timer(double now, const Deliver& deliver) {
  while (started_ && next_ != end_) {
    Slot& s = slot(next_);
    if (s.state == State::missing) {
      if (s.deadline > now) break;
      s.state = State::given_up;
      ++stats_.unrecovered;
      advance();
    } else {
      release_in_order(deliver);
    }
  }
  prune_blocks();
}

}  // namespace fec
