#include "src/transport/path_auth.hpp"

#include <sodium.h>

#include <cstring>
#include <string_view>

namespace transport::path_auth {
namespace {

constexpr std::size_t kMacOffset = 36, kMacSize = 16;

void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
std::uint32_t get32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
std::uint64_t get64(const std::uint8_t* p) {
  return std::uint64_t{get32(p)} << 32 | get32(p + 4);
}

void keyed_hash(std::span<std::uint8_t> out, const crypto::Key& key,
                std::span<const std::uint8_t> in) {
  crypto_generichash(out.data(), out.size(), in.data(), in.size(), key.data(), key.size());
}
std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

PathKey derive(const crypto::Key& psk) {
  PathKey out;
  keyed_hash(out.key, psk, bytes_of("sctptund path v1"));
  std::uint8_t tag[32];
  keyed_hash(tag, out.key, bytes_of("sctptund tag v1"));
  out.tag = get32(tag);
  return out;
}

crypto::Key fec_key(const PathKey& key) {
  crypto::Key out{};
  keyed_hash(out, key.key, bytes_of("sctptund fec v1"));
  return out;
}

std::array<std::uint8_t, kSize> encode(const Probe& probe, const PathKey& key) {
  std::array<std::uint8_t, kSize> out{};
  std::uint8_t* p = out.data();
  put32(p + 4, kMagic);
  p[8] = probe.kind;
  p[9] = probe.path_id;
  put32(p + 12, probe.seq);
  put64(p + 16, probe.stamp);
  put32(p + 24, key.tag);
  put64(p + 28, probe.cookie);
  keyed_hash({p + kMacOffset, kMacSize}, key.key, {p, kMacOffset});
  return out;
}

std::optional<Probe> parse(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kSize || get32(bytes.data()) != 0 || get32(bytes.data() + 4) != kMagic)
    return std::nullopt;
  const std::uint8_t* p = bytes.data();
  if ((p[8] != kRequest && p[8] != kEcho) || p[10] != 0 || p[11] != 0) return std::nullopt;
  Probe probe;
  probe.kind = p[8];
  probe.path_id = p[9];
  probe.seq = get32(p + 12);
  probe.stamp = get64(p + 16);
  probe.key_tag = get32(p + 24);
  probe.cookie = get64(p + 28);
  return probe;
}

bool verify(std::span<const std::uint8_t> bytes, const PathKey& key) {
  if (bytes.size() != kSize) return false;
  std::uint8_t mac[kMacSize];
  keyed_hash(mac, key.key, bytes.first(kMacOffset));
  return sodium_memcmp(mac, bytes.data() + kMacOffset, kMacSize) == 0;
}

std::uint64_t random_cookie() {
  std::uint64_t cookie = 0;
  while (cookie == 0) randombytes_buf(&cookie, sizeof cookie);
  return cookie;
}

}  // namespace transport::path_auth
