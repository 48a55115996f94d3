#include "src/crypto/key.hpp"

#include <sodium.h>

#include <cstring>
#include <new>
#include <utility>

namespace crypto {
namespace {

std::uint8_t* allocate() {
  static const bool ready = sodium_init() >= 0;  // sodium_malloc needs the page size it finds
  void* p = ready ? sodium_malloc(kKeySize) : nullptr;
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, kKeySize);
  return static_cast<std::uint8_t*>(p);
}

}  // namespace

Key::Key() : bytes_(allocate()) {}

Key::Key(const Key& other) : bytes_(allocate()) {
  std::memcpy(bytes_, other.bytes_, kKeySize);
}

Key& Key::operator=(const Key& other) {
  if (this != &other) {
    if (bytes_ == nullptr) bytes_ = allocate();
    std::memcpy(bytes_, other.bytes_, kKeySize);
  }
  return *this;
}

Key::Key(Key&& other) noexcept : bytes_(std::exchange(other.bytes_, nullptr)) {}

Key& Key::operator=(Key&& other) noexcept {
  std::swap(bytes_, other.bytes_);
  return *this;
}

Key::~Key() {
  sodium_free(bytes_);  // wipes the bytes before unmapping; a null pointer is allowed
}

void Key::fill(std::uint8_t value) {
  std::memset(bytes_, value, kKeySize);
}

bool operator==(const Key& a, const Key& b) {
  return sodium_memcmp(a.bytes_, b.bytes_, kKeySize) == 0;
}

std::string generate_key() {
  Key key;
  randombytes_buf(key.data(), key.size());
  char out[sodium_base64_ENCODED_LEN(kKeySize, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(out, sizeof out, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string text(out);
  sodium_memzero(out, sizeof out);
  return text;
}

void wipe(std::string& text) {
  sodium_memzero(text.data(), text.size());
}

std::optional<Key> parse_key(std::string_view text, std::string& error) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  Key key;
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    error = "not a base64 key (make one with `sctptund genkey`)";
    return std::nullopt;
  }
  if (len != kKeySize) {
    error = "the key is " + std::to_string(len) +
            " bytes, it must be 32 (make one with `sctptund genkey`)";
    return std::nullopt;
  }
  return key;
}

}  // namespace crypto
