#include "src/crypto/session.hpp"

#include <sodium.h>

#include <cstring>

#include "src/base/bytes.hpp"

namespace crypto {
namespace {

constexpr char kAuthLabel[] = "sctptund auth v2";
constexpr char kKeyLabel[] = "sctptund key v2";

std::span<const std::uint8_t> label(const char* text) {
  return {reinterpret_cast<const std::uint8_t*>(text), std::strlen(text)};
}

// len(hello_a) | hello_a | len(hello_b) | hello_b into the hash, after the given prefix parts.
void transcript_hash(const Key& psk, std::initializer_list<std::span<const std::uint8_t>> prefix,
                     const Transcript& transcript, std::uint8_t* out, std::size_t out_len) {
  std::uint8_t len_a[2], len_b[2];
  base::store_be16(len_a, static_cast<std::uint16_t>(transcript.hello_a.size()));
  base::store_be16(len_b, static_cast<std::uint16_t>(transcript.hello_b.size()));
  crypto_generichash_state state;
  crypto_generichash_init(&state, psk.data(), psk.size(), out_len);
  for (auto part : prefix) crypto_generichash_update(&state, part.data(), part.size());
  for (auto part : {std::span<const std::uint8_t>(len_a), transcript.hello_a,
                    std::span<const std::uint8_t>(len_b), transcript.hello_b})
    crypto_generichash_update(&state, part.data(), part.size());
  crypto_generichash_final(&state, out, out_len);
  sodium_memzero(&state, sizeof state);  // it held the key's blocks
}

Key derive(const Key& psk, Role sealer, const Transcript& transcript) {
  Key key;
  transcript_hash(psk, {label(kKeyLabel), label(sealer == Role::a ? "a->b" : "b->a")}, transcript,
                  key.data(), key.size());
  return key;
}

}  // namespace

bool init() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

Nonce random_nonce() {
  Nonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

Proof auth_proof(const Key& psk, Role sender, const Transcript& transcript) {
  Proof proof;
  const std::uint8_t role = static_cast<std::uint8_t>(sender);
  transcript_hash(psk, {label(kAuthLabel), std::span(&role, 1)}, transcript, proof.data(),
                  proof.size());
  return proof;
}

bool proof_equal(const Proof& a, std::span<const std::uint8_t> b) {
  return b.size() == a.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool aes_gcm_available() {
  return init() && crypto_aead_aes256gcm_is_available();
}

const char* to_string(Cipher cipher) {
  return cipher == Cipher::aes256_gcm ? "aes256-gcm" : "chacha20-poly1305";
}

Session::Session(const Key& psk, Role ours, const Transcript& transcript, Cipher cipher)
    : cipher_(cipher),
      send_key_(derive(psk, ours, transcript)),
      recv_key_(derive(psk, other(ours), transcript)) {}

std::uint64_t& Session::counter(std::vector<std::uint64_t>& counters, std::uint16_t stream) {
  if (counters.size() <= stream) counters.resize(std::size_t{stream} + 1);
  return counters[stream];
}

void Session::make_nonce(std::uint16_t stream, std::uint64_t n, std::uint8_t out[12]) {
  base::store_be16(out, stream);
  base::store_be64(out + 2, n);
  out[10] = out[11] = 0;
}

void Session::seal(std::uint16_t stream, std::span<const std::uint8_t> plain, std::uint8_t* out) {
  std::uint8_t nonce[12];
  make_nonce(stream, counter(send_counters_, stream), nonce);
  std::uint8_t* tag = out + plain.size();
  if (cipher_ == Cipher::aes256_gcm) {
    crypto_aead_aes256gcm_encrypt_detached(out, tag, nullptr, plain.data(), plain.size(), nullptr,
                                           0, nullptr, nonce, send_key_.data());
  } else {
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, tag, nullptr, plain.data(),
                                                       plain.size(), nullptr, 0, nullptr, nonce,
                                                       send_key_.data());
  }
}

bool Session::open(std::uint16_t stream, std::span<std::uint8_t> sealed) {
  if (sealed.size() < kTagSize) return false;
  std::uint64_t& n = counter(recv_counters_, stream);
  std::uint8_t nonce[12];
  make_nonce(stream, n, nonce);
  std::size_t len = sealed.size() - kTagSize;
  const std::uint8_t* tag = sealed.data() + len;
  int rc = cipher_ == Cipher::aes256_gcm
               ? crypto_aead_aes256gcm_decrypt_detached(sealed.data(), nullptr, sealed.data(), len,
                                                        tag, nullptr, 0, nonce, recv_key_.data())
               : crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                     sealed.data(), nullptr, sealed.data(), len, tag, nullptr, 0, nonce,
                     recv_key_.data());
  if (rc != 0) return false;
  ++n;
  return true;
}

}  // namespace crypto
