#pragma once
// The deterministic byte stream the netns traffic tools send and verify.

#include <cstddef>
#include <cstdint>

// xorshift64* byte stream; any seed (including 0) gives a non-degenerate stream.
class Stream {
 public:
  explicit Stream(std::uint64_t seed) : x_(seed ^ 0x9E3779B97F4A7C15ULL) {
    if (x_ == 0) x_ = 1;
  }
  void fill(std::uint8_t* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (avail_ == 0) {
        x_ ^= x_ >> 12;
        x_ ^= x_ << 25;
        x_ ^= x_ >> 27;
        word_ = x_ * 0x2545F4914F6CDD1DULL;
        avail_ = 8;
      }
      out[i] = static_cast<std::uint8_t>(word_);
      word_ >>= 8;
      --avail_;
    }
  }

 private:
  std::uint64_t x_, word_ = 0;
  int avail_ = 0;
};
