#pragma once
// Handshake: what one association's two sides agree on before packets flow — protocol version,
// capabilities (compression, bundling, cipher) and, with a pre-shared key, proof that the peer
// holds it and the keys that protect its messages (src/crypto_session.hpp).
//
// Flow on each side (both run it; stream 0 keeps HELLO before AUTH):
//   association up     -> we send our HELLO (fresh nonce when we hold a key)
//   peer HELLO         -> on_peer_hello(): version, capabilities and security settings must
//                         agree, and the HELLO must not be a reflection of ours (our instance id
//                         or nonce), else fatal; our role (crypto::Role) follows from the two
//                         instance ids; with a key the Session is derived now and our AUTH is due
//   peer AUTH          -> on_peer_auth(): the proof must match, else fatal (wrong key)
// A side sends packets only once peer_ready(): our HELLO sent, the peer's received, and with a
// key the peer's AUTH verified. That AUTH proves the peer has our HELLO, so it can open what we
// seal; a sealed message on any stream therefore never arrives before the peer can open it.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "src/crypto/session.hpp"
#include "src/gateway/wire.hpp"

namespace gateway {

// What we offer to one peer (from its [[peer]] section).
struct PeerSecurity {
  std::optional<crypto::Key> psk;  // no key: no authentication (warned about at start)
  bool seal = false;               // encryption = "aead": requires psk
  bool compression = true;
  bool bundle = true;
  bool fec = false;  // offer FEC below SCTP (needs psk: parity is authenticated with it)
  // Offer striping: flows spread over the peer's associations, as SEQUENCED messages (wire.hpp).
  bool stripe = false;
};

class Handshake {
 public:
  Handshake(const PeerSecurity& security, std::uint32_t instance);

  std::span<const std::uint8_t> hello() const { return hello_; }
  // Takes the peer's HELLO (the whole message). false: the association must be aborted; reason
  // says why in words for the log.
  bool on_peer_hello(std::span<const std::uint8_t> msg, std::string& reason);
  // Our AUTH message; valid once the peer's HELLO is in and needs_auth().
  std::array<std::uint8_t, gateway::wire::kAuthSize> auth() const;
  // Takes the peer's AUTH. false: wrong key (or AUTH where none belongs): abort.
  bool on_peer_auth(std::span<const std::uint8_t> msg, std::string& reason);

  bool needs_auth() const { return psk_.has_value(); }
  bool seals() const { return seal_; }
  bool peer_hello_received() const { return peer_hello_received_; }
  bool peer_authenticated() const { return peer_authenticated_; }
  std::uint32_t peer_instance() const { return peer_instance_; }
  // Our HELLO's nonce, and the peer's once its HELLO is in (zero without a key).
  const crypto::Nonce& nonce() const { return nonce_; }
  const crypto::Nonce& peer_nonce() const { return peer_nonce_; }
  bool compress() const { return compress_; }
  bool bundle() const { return bundle_; }
  bool fec() const { return fec_; }        // both HELLOs offered FEC
  bool stripe() const { return stripe_; }  // both HELLOs offered striping
  // The AEAD state once the peer's HELLO is in and we seal; null otherwise.
  crypto::Session* session() const { return session_.get(); }

 private:
  // Both HELLOs in role order; valid once the peer's HELLO is in.
  crypto::Transcript transcript() const;

  std::optional<crypto::Key> psk_;
  std::uint32_t instance_;
  crypto::Role role_ = crypto::Role::a;  // ours, once the peer's HELLO is in
  bool seal_, offer_compression_, offer_fec_, offer_stripe_;
  crypto::Nonce nonce_{}, peer_nonce_{};
  std::vector<std::uint8_t> hello_, peer_hello_;
  bool peer_hello_received_ = false, peer_authenticated_ = false;
  std::uint32_t peer_instance_ = 0;
  bool compress_ = false, bundle_ = false, fec_ = false, stripe_ = false;
  std::unique_ptr<crypto::Session> session_;
};

}  // namespace gateway
