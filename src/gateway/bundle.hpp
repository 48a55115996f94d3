#pragma once
// Bundle: the small packets of one (association, stream) that were read from the TUN together,
// gathered into one BUNDLE message (wire.hpp), so they share one SCTP DATA chunk header (16
// bytes) instead of paying one each. The gateway flushes a bundle before any other send and at
// the end of every batch: a packet never waits for company.
//
// Layout of buf_: [type BUNDLE][len item][len item]... — with one item, message() is that item
// alone (an ordinary PACKET / PACKET_HC message), so a lone packet costs nothing extra.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "src/gateway/wire.hpp"
#include "src/transport/transport.hpp"

namespace gateway {

class Bundle {
 public:
  // Packets up to this size (inner IP packet) are bundled; bigger ones gain little from it.
  static constexpr std::size_t kMaxInnerPacket = 256;
  // A bundle fits in one SCTP packet on a 1500-byte path (IP 20/40 + UDP 8 + SCTP 12 + DATA 16).
  static constexpr std::size_t kMaxSize = 1200;

  bool empty() const { return items_ == 0; }
  std::size_t items() const { return items_; }
  transport::AssocId assoc() const { return assoc_; }
  std::uint16_t stream() const { return stream_; }

  // Whether an item of at most item_len bytes for (assoc, stream) can join this bundle.
  bool accepts(transport::AssocId assoc, std::uint16_t stream, std::size_t item_len) const {
    if (empty()) return item_len <= kMaxSize - 1 - 2;
    return assoc == assoc_ && stream == stream_ && size_ + 2 + item_len <= kMaxSize;
  }

  // Appends one message made of parts (type byte, header, payload ...); accepts() said yes. The
  // bundle is sent redundant if any of its packets is.
  void append(transport::AssocId assoc, std::uint16_t stream,
              std::initializer_list<std::span<const std::uint8_t>> parts,
              transport::SendOptions options = {}) {
    std::size_t len = 0;
    for (auto part : parts) len += part.size();
    if (items_ == 0) {
      assoc_ = assoc;
      stream_ = stream;
      buf_[0] = static_cast<std::uint8_t>(gateway::wire::Type::bundle);
      size_ = 1;
      first_ = 1 + gateway::wire::bundle_length_size(len);
      options_ = {};
    }
    options_.redundant = options_.redundant || options.redundant;
    size_ += gateway::wire::write_bundle_length(&buf_[size_], len);
    for (auto part : parts) {
      std::copy(part.begin(), part.end(), &buf_[size_]);
      size_ += part.size();
    }
    ++items_;
  }

  // The message to send: the BUNDLE, or with one item that item's message alone.
  std::span<const std::uint8_t> message() const {
    if (items_ == 1) return std::span(buf_).subspan(first_, size_ - first_);
    return std::span(buf_).first(size_);
  }

  transport::SendOptions options() const { return options_; }

  void clear() { items_ = 0, size_ = 0; }

 private:
  std::array<std::uint8_t, kMaxSize> buf_;
  std::size_t size_ = 0;   // bytes of buf_ in use
  std::size_t first_ = 0;  // where the first item's message starts
  std::size_t items_ = 0;
  transport::AssocId assoc_ = 0;
  std::uint16_t stream_ = 0;
  transport::SendOptions options_;
};

}  // namespace gateway
