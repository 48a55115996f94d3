#pragma once
// Peer authentication and message protection with libsodium.
//
// Keys (src/crypto/key.hpp): each peer has a pre-shared key (PSK). The PSK itself never protects
// traffic; per association:
//  1. Both sides send a HELLO carrying their instance id (random per daemon start) and a fresh
//     random 32-byte nonce (wire extension kExtNonce).
//  2. Roles: the side whose HELLO has the lower instance id is side "a", the other side "b"; both
//     decide alike. A HELLO with our own instance id (or nonce) is refused: it is a reflection of
//     ours, so a message we made never verifies as the peer's.
//  3. Each side sends AUTH: proof = BLAKE2b-256 keyed with the PSK over
//     "sctptund auth v2" | sender's role ('a' or 'b') | transcript, where transcript is
//     len(HELLO of a) (2 bytes, big-endian) | HELLO of a | len(HELLO of b) | HELLO of b (both
//     HELLOs whole, so versions, capabilities, instances and nonces are all bound). The receiver
//     checks it in constant time against the peer's role.
//  4. Both derive one key per direction: BLAKE2b-256 keyed with the PSK over
//     "sctptund key v2" | direction ("a->b" or "b->a") | transcript.
// Messages: every message after AUTH is SEALED: AEAD(ChaCha20-Poly1305 IETF, or AES-256-GCM when
// both sides have AES-NI) over the inner message, 16-byte tag appended. The 96-bit AEAD nonce is
// implicit: stream (2 bytes) | that stream's message counter (8 bytes, from 0) | 2 zero bytes.
// SCTP delivers a stream reliably and in order, so both sides count alike; a replayed, reordered,
// moved (other stream) or modified message fails authentication and is dropped. Counters only
// advance on a message that was queued (sealer) or that authenticated (opener).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "src/crypto/key.hpp"

namespace crypto {

inline constexpr std::size_t kNonceSize = 32;  // the HELLO nonce
inline constexpr std::size_t kProofSize = 32;
inline constexpr std::size_t kTagSize = 16;
using Nonce = std::array<std::uint8_t, kNonceSize>;
using Proof = std::array<std::uint8_t, kProofSize>;

// Initialises libsodium once; false if it cannot (the daemon refuses to start).
bool init();

Nonce random_nonce();

// Which end of an association a side is (see above): decided from the two instance ids.
enum class Role : std::uint8_t { a = 'a', b = 'b' };
inline Role other(Role role) {
  return role == Role::a ? Role::b : Role::a;
}

// Both HELLOs of an association as sent, in role order.
struct Transcript {
  std::span<const std::uint8_t> hello_a, hello_b;
};

// The AUTH proof that the side of role sender makes over the transcript.
Proof auth_proof(const Key& psk, Role sender, const Transcript& transcript);
// Constant-time comparison.
bool proof_equal(const Proof& a, std::span<const std::uint8_t> b);

enum class Cipher : std::uint8_t { chacha20_poly1305, aes256_gcm };
bool aes_gcm_available();
const char* to_string(Cipher cipher);

// The AEAD state of one association: a key per direction and per-stream message counters.
class Session {
 public:
  // The keys of the side of role ours: it seals with the key of its direction, opens with the
  // other's.
  Session(const Key& psk, Role ours, const Transcript& transcript, Cipher cipher);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Cipher cipher() const { return cipher_; }
  // Seals plain into out (plain.size() + kTagSize bytes) with the stream's next send counter.
  // The counter advances only with commit_sent(stream), once the message was queued.
  void seal(std::uint16_t stream, std::span<const std::uint8_t> plain, std::uint8_t* out);
  void commit_sent(std::uint16_t stream) { ++counter(send_counters_, stream); }
  // Authenticates and decrypts in place: on success the plaintext is the first
  // sealed.size() - kTagSize bytes and the stream's receive counter advances.
  bool open(std::uint16_t stream, std::span<std::uint8_t> sealed);

 private:
  static std::uint64_t& counter(std::vector<std::uint64_t>& counters, std::uint16_t stream);
  static void make_nonce(std::uint16_t stream, std::uint64_t n, std::uint8_t out[12]);

  Cipher cipher_;
  Key send_key_, recv_key_;
  std::vector<std::uint64_t> send_counters_, recv_counters_;  // indexed by stream
};

}  // namespace crypto
