#pragma once
// Authenticated path probes (doc/PROTOCOL.md, "Path probes", kinds 3 and 4): what lets a gateway
// learn where a peer is (behind a NAT, after it moved) from traffic that proves the peer's key.
//
// The path key is derived from the peer's pre-shared key, so probes work before any association:
//   path key = BLAKE2b-256 keyed with the PSK over "sctptund path v1"
//   key tag  = first 4 bytes of BLAKE2b-256 keyed with the path key over "sctptund tag v1"
// (the tag names the key, so a receiver finds the peer without trying every key; it proves
// nothing). A probe is 60 bytes, big-endian:
//   0..3 zero (SCTP ports 0/0) | 4..7 magic "STPB" | 8 kind (3 request, 4 echo) | 9 sender's path
//   id | 10..11 zero | 12..15 sequence | 16..23 sender's timestamp (us) | 24..27 key tag |
//   28..35 cookie | 36..43 sender | 44..59 MAC = BLAKE2b-128 keyed with the path key over 0..43.
// Both gateways of a pair hold the same path key, so the MAC alone cannot tell who sent a probe:
// the sender field can. It is the sending gateway's random instance id (PathKey::self, never
// zero), covered by the MAC; a probe whose sender is our own self never verifies, so a probe of
// ours reflected back to us proves nothing.
// An echo copies the request's path id, sequence and timestamp. Cookies are the return-
// routability check: an echo to an address that is not yet a path carries a fresh random cookie
// (a challenge); only a request carrying that cookie, from exactly that address and port,
// makes the address a path. A request carries the cookie of the last challenge it answers, else 0.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "src/crypto/session.hpp"

namespace transport::path_auth {

inline constexpr std::size_t kSize = 60;
// The size of the previous version's authenticated probes (no sender field): never accepted.
inline constexpr std::size_t kSizeV1 = 52;
inline constexpr std::uint32_t kMagic = 0x53545042;  // "STPB", as the plain probes
inline constexpr std::uint8_t kRequest = 3, kEcho = 4;

struct PathKey {
  crypto::Key key{};
  std::uint32_t tag = 0;
  // Who sends with this key: written into every probe encoded with it; probes carrying it do not
  // verify. Random and non-zero from derive(); a transport sets one value for all its peers.
  std::uint64_t self = 0;
  // The same key (self is who holds it, not what it is).
  bool operator==(const PathKey& o) const { return key == o.key && tag == o.tag; }
};
// The path key of psk, with a fresh random self.
PathKey derive(const crypto::Key& psk);
// The key of FEC parity and reports (fec_wire.hpp) = BLAKE2b-256 keyed with the path key over
// "sctptund fec v1".
crypto::Key fec_key(const PathKey& key);

struct Probe {
  std::uint8_t kind = kRequest;
  std::uint8_t path_id = 0;
  std::uint32_t seq = 0;
  std::uint64_t stamp = 0;
  std::uint32_t key_tag = 0;
  std::uint64_t cookie = 0;
  std::uint64_t sender = 0;  // parse(): the sender field; encode() writes the key's self instead
};

// Writes probe (with key.tag as its key tag, key.self as its sender) and its MAC.
std::array<std::uint8_t, kSize> encode(const Probe& probe, const PathKey& key);
// The fields of a 60-byte probe of kind 3 or 4 (nullopt otherwise); the MAC is not checked.
std::optional<Probe> parse(std::span<const std::uint8_t> bytes);
// True when bytes (a parsed probe) carry a valid MAC for key (constant-time comparison) and
// were not sent with key.self: a probe we sent, reflected back to us, never verifies.
bool verify(std::span<const std::uint8_t> bytes, const PathKey& key);

// A random non-zero cookie.
std::uint64_t random_cookie();

}  // namespace transport::path_auth
