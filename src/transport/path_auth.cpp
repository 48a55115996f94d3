#include "src/transport/path_auth.hpp"

#include <sodium.h>

#include <cstring>
#include <string_view>

#include "src/base/bytes.hpp"

namespace transport::path_auth {
namespace {

constexpr std::size_t kSenderOffset = 36, kMacOffset = 44, kMacSize = 16;

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
  out.tag = base::load_be32(tag);
  sodium_memzero(tag, sizeof tag);
  out.self = random_cookie();
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
  base::store_be32(p + 4, kMagic);
  p[8] = probe.kind;
  p[9] = probe.path_id;
  base::store_be32(p + 12, probe.seq);
  base::store_be64(p + 16, probe.stamp);
  base::store_be32(p + 24, key.tag);
  base::store_be64(p + 28, probe.cookie);
  base::store_be64(p + kSenderOffset, key.self);
  keyed_hash({p + kMacOffset, kMacSize}, key.key, {p, kMacOffset});
  return out;
}

std::optional<Probe> parse(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kSize || base::load_be32(bytes.data()) != 0 ||
      base::load_be32(bytes.data() + 4) != kMagic)
    return std::nullopt;
  const std::uint8_t* p = bytes.data();
  if ((p[8] != kRequest && p[8] != kEcho) || p[10] != 0 || p[11] != 0) return std::nullopt;
  Probe probe;
  probe.kind = p[8];
  probe.path_id = p[9];
  probe.seq = base::load_be32(p + 12);
  probe.stamp = base::load_be64(p + 16);
  probe.key_tag = base::load_be32(p + 24);
  probe.cookie = base::load_be64(p + 28);
  probe.sender = base::load_be64(p + kSenderOffset);
  return probe;
}

bool verify(std::span<const std::uint8_t> bytes, const PathKey& key) {
  if (bytes.size() != kSize || base::load_be64(bytes.data() + kSenderOffset) == key.self)
    return false;
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
