#pragma once
// PacketBuf: one packet in a buffer with room in front of it, so a tunnel header can be
// written in place (push_front) and stripped again (pull_front) without copying the payload.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace tun {

class PacketBuf {
 public:
  // Room reserved in front of a freshly read packet for our own headers.
  static constexpr std::size_t kHeadroom = 192;
  // Largest packet (a 64 KiB GSO super-packet plus its virtio-net header) and its headroom.
  static constexpr std::size_t kCapacity = kHeadroom + 65536 + 64;

  PacketBuf() : storage_(new std::uint8_t[kCapacity]) {}

  // The packet bytes. Invariant: kHeadroom-ish <= start_ , start_ + size_ <= kCapacity.
  std::span<std::uint8_t> data() { return {storage_.get() + start_, size_}; }
  std::span<const std::uint8_t> data() const { return {storage_.get() + start_, size_}; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Start over: an empty packet at the default headroom.
  void reset() {
    start_ = kHeadroom;
    size_ = 0;
  }
  // Where a device reads a packet into; follow with set_size(bytes read).
  std::span<std::uint8_t> tailroom() { return {storage_.get() + start_, kCapacity - start_}; }
  void set_size(std::size_t n) {
    assert(start_ + n <= kCapacity);
    size_ = static_cast<std::uint32_t>(n);
  }
  std::size_t headroom() const { return start_; }

  // Grows the packet by n bytes at the front and returns them. Precondition: n <= headroom().
  std::span<std::uint8_t> push_front(std::size_t n) {
    assert(n <= start_);
    start_ -= static_cast<std::uint32_t>(n);
    size_ += static_cast<std::uint32_t>(n);
    return {storage_.get() + start_, n};
  }
  // Drops n bytes from the front. Precondition: n <= size().
  void pull_front(std::size_t n) {
    assert(n <= size_);
    start_ += static_cast<std::uint32_t>(n);
    size_ -= static_cast<std::uint32_t>(n);
  }
  // Replaces the contents with a copy of bytes, placed at the default headroom.
  bool assign(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > kCapacity - kHeadroom) return false;
    reset();
    std::memcpy(storage_.get() + start_, bytes.data(), bytes.size());
    size_ = static_cast<std::uint32_t>(bytes.size());
    return true;
  }

 private:
  std::unique_ptr<std::uint8_t[]> storage_;
  std::uint32_t start_ = kHeadroom;
  std::uint32_t size_ = 0;
};

}  // namespace tun
