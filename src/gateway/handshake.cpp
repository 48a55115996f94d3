#include "src/gateway/handshake.hpp"

#include <algorithm>
#include <cstdio>

namespace gateway {

Handshake::Handshake(const PeerSecurity& security, std::uint32_t instance)
    : psk_(security.psk),
      instance_(instance),
      seal_(security.seal && security.psk),
      offer_compression_(security.compression),
      offer_fec_(security.fec && security.psk),
      offer_stripe_(security.stripe) {
  gateway::wire::Hello hello;
  hello.instance = instance;
  if (security.bundle) hello.capabilities |= gateway::wire::kCapBundle;
  if (security.compression) hello.capabilities |= gateway::wire::kCapCompression;
  if (offer_fec_) hello.capabilities |= gateway::wire::kCapFec;
  if (offer_stripe_) hello.capabilities |= gateway::wire::kCapStripe;
  if (psk_) {
    nonce_ = crypto::random_nonce();
    hello.capabilities |= gateway::wire::kCapAuth;
    hello.extensions.push_back({gateway::wire::kExtNonce, {nonce_.begin(), nonce_.end()}});
  }
  if (seal_) {
    hello.capabilities |= gateway::wire::kCapSealed;
    if (crypto::aes_gcm_available()) hello.capabilities |= gateway::wire::kCapAesGcm;
  }
  hello_ = gateway::wire::encode_hello(hello);
}

bool Handshake::on_peer_hello(std::span<const std::uint8_t> msg, std::string& reason) {
  if (peer_hello_received_) {
    reason = "a second HELLO";
    return false;
  }
  gateway::wire::Hello hello;
  if (gateway::wire::DecodeError error = gateway::wire::decode_hello(msg, hello);
      error != gateway::wire::DecodeError::none) {
    reason = std::string("malformed HELLO (") + gateway::wire::to_string(error) + ")";
    return false;
  }
  if (hello.version != gateway::wire::kVersion) {
    reason = "the peer speaks protocol version " + std::to_string(hello.version) + ", we speak " +
             std::to_string(gateway::wire::kVersion) +
             ": both gateways must run the same protocol version (upgrade the other gateway)";
    return false;
  }
  if (hello.instance == instance_) {
    char ours[16];
    std::snprintf(ours, sizeof ours, "%08x", instance_);
    reason = std::string("the peer's HELLO carries our own instance id ") + ours +
             " (a reflection of our own HELLO, e.g. two of our associations crossed into each "
             "other; or, very rarely, the peer drew the same random instance: restart either "
             "gateway)";
    return false;
  }
  bool peer_auth = hello.capabilities & gateway::wire::kCapAuth;
  if (psk_ && !peer_auth) {
    reason = "the peer does not authenticate (no key_file for us on its side?)";
    return false;
  }
  if (!psk_ && peer_auth) {
    reason = "the peer expects a pre-shared key, and we have no key_file for it";
    return false;
  }
  bool peer_seals = hello.capabilities & gateway::wire::kCapSealed;
  if (peer_seals != seal_) {
    reason = std::string("encryption mismatch: we use \"") + (seal_ ? "aead" : "none") +
             "\", the peer \"" + (peer_seals ? "aead" : "none") + "\"";
    return false;
  }
  crypto::Nonce peer_nonce{};
  if (psk_) {
    auto ext = std::find_if(
        hello.extensions.begin(), hello.extensions.end(),
        [](const gateway::wire::Extension& e) { return e.type == gateway::wire::kExtNonce; });
    if (ext == hello.extensions.end() || ext->value.size() != crypto::kNonceSize) {
      reason = "the peer's HELLO carries no 32-byte nonce";
      return false;
    }
    std::copy(ext->value.begin(), ext->value.end(), peer_nonce.begin());
    if (peer_nonce == nonce_) {
      reason = "the peer's HELLO carries our own nonce (a reflection)";
      return false;
    }
  }
  peer_hello_.assign(msg.begin(), msg.end());
  peer_hello_received_ = true;
  peer_nonce_ = peer_nonce;
  role_ = instance_ < hello.instance ? crypto::Role::a : crypto::Role::b;
  peer_instance_ = hello.instance;
  compress_ = offer_compression_ && (hello.capabilities & gateway::wire::kCapCompression);
  bundle_ = hello.capabilities & gateway::wire::kCapBundle;
  fec_ = offer_fec_ && (hello.capabilities & gateway::wire::kCapFec);
  stripe_ = offer_stripe_ && (hello.capabilities & gateway::wire::kCapStripe);
  if (seal_) {
    bool aes = crypto::aes_gcm_available() && (hello.capabilities & gateway::wire::kCapAesGcm);
    session_ = std::make_unique<crypto::Session>(
        *psk_, role_, transcript(),
        aes ? crypto::Cipher::aes256_gcm : crypto::Cipher::chacha20_poly1305);
  }
  return true;
}

crypto::Transcript Handshake::transcript() const {
  if (role_ == crypto::Role::a) return {hello_, peer_hello_};
  return {peer_hello_, hello_};
}

std::array<std::uint8_t, gateway::wire::kAuthSize> Handshake::auth() const {
  return gateway::wire::encode_auth(crypto::auth_proof(*psk_, role_, transcript()));
}

bool Handshake::on_peer_auth(std::span<const std::uint8_t> msg, std::string& reason) {
  if (!psk_ || !peer_hello_received_ || peer_authenticated_) {
    reason = "an AUTH out of place";
    return false;
  }
  crypto::Proof expected = crypto::auth_proof(*psk_, crypto::other(role_), transcript());
  std::span<const std::uint8_t> proof;
  if (gateway::wire::decode_auth(msg, proof) != gateway::wire::DecodeError::none ||
      !crypto::proof_equal(expected, proof)) {
    reason = "authentication failed: the peer does not hold our key";
    return false;
  }
  peer_authenticated_ = true;
  return true;
}

}  // namespace gateway
