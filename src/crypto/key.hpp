#pragma once
// Key material: a peer's pre-shared key (PSK) and every key derived from it (the per-direction
// AEAD keys of a Session, path keys, FEC keys).
//
// A Key's 32 bytes live in memory from sodium_malloc(): guard pages on both sides, locked against
// swapping where RLIMIT_MEMLOCK allows, excluded from core dumps (MADV_DONTDUMP), and wiped when
// freed. A copy is a new allocation of the same kind, so no copy ever sits in ordinary memory; a
// moved-from Key holds no memory (only assignment and destruction are valid on it).
//
// PSKs are 32 random bytes, kept base64-encoded in a key file (`sctptund genkey`).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace crypto {

inline constexpr std::size_t kKeySize = 32;

class Key {
 public:
  Key();  // 32 zero bytes
  Key(const Key& other);
  Key& operator=(const Key& other);
  Key(Key&& other) noexcept;
  Key& operator=(Key&& other) noexcept;
  ~Key();

  std::uint8_t* data() { return bytes_; }
  const std::uint8_t* data() const { return bytes_; }
  static constexpr std::size_t size() { return kKeySize; }
  std::uint8_t* begin() { return bytes_; }
  std::uint8_t* end() { return bytes_ + kKeySize; }
  const std::uint8_t* begin() const { return bytes_; }
  const std::uint8_t* end() const { return bytes_ + kKeySize; }
  std::uint8_t& operator[](std::size_t i) { return bytes_[i]; }
  std::uint8_t operator[](std::size_t i) const { return bytes_[i]; }
  void fill(std::uint8_t value);

  // Constant-time comparison.
  friend bool operator==(const Key& a, const Key& b);

 private:
  std::uint8_t* bytes_;
};

// A new random PSK, base64 (standard alphabet, padded): 44 characters.
std::string generate_key();
// Parses a key file's contents: base64 of exactly 32 bytes, surrounding whitespace ignored.
std::optional<Key> parse_key(std::string_view text, std::string& error);
// Overwrites text with zeros (for key text that left guarded memory, e.g. to be printed).
void wipe(std::string& text);

}  // namespace crypto
