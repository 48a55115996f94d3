#pragma once
// The sctptund wire protocol: the messages carried inside SCTP user messages. Everything about
// the on-wire layout lives in this header (sizes static_asserted) and wire.cpp (pure functions).
// Described for humans in doc/PROTOCOL.md; keep the two in step.
//
// Every message starts with one type byte.
//   HELLO  (0x01) on stream 0, sent by both sides as soon as an association is up:
//          type(1) version(1) reserved(2) magic(4) capabilities(4) instance(4) then TLV extensions
//          (type(1) length(1) value(length)), unknown extension types are skipped.
//   PACKET (0x02) on a flow's stream: type(1) followed by one IP packet, unchanged.
//   PACKET_HC (0x04), PACKET_GSO_HC (0x05): as PACKET / PACKET_GSO, but the IP+TCP/UDP header
//          is replaced by its compressed form (header_codec.hpp), one compressor context per
//          flow and per (association, stream); only when both HELLOs announce compression.
//   CONTEXT_RESET (0x06) on stream 0: type(1) stream(2): the sender's decompressor of that
//          stream failed and was reset; the receiver resets its compressor of that stream, so
//          the next packets carry full headers.
//   BUNDLE (0x07) on a flow's stream: type(1) then two or more items, each a length (1 byte
//          below 0x80, else 2 bytes: 0x80|high 7 bits, low 8 bits) and a PACKET or PACKET_HC
//          message of that length. Small packets of one stream that were ready together share
//          one SCTP DATA chunk; only when both HELLOs announce bundling.
//   AUTH (0x08) on stream 0, after HELLO, only with a pre-shared key: type(1) proof(32)
//          (src/crypto/session.hpp).
//   SEALED (0x09) on any stream, after AUTH, when both sides seal: type(1), the AEAD ciphertext
//          of one inner message (any type but HELLO, AUTH and SEALED), a 16-byte tag.
//   PACKET_GSO (0x03) on a flow's stream: type(1), the 10-byte virtio-net header as the sender's
//          TUN gave it (little-endian: flags(1) gso_type(1) hdr_len(2) gso_size(2)
//          csum_start(2) csum_offset(2)), then one IP packet: a GSO super-packet of up to 64 KB
//          and/or one with a partial checksum. Every receiver accepts it: a TUN with
//          offloads takes it as is, otherwise the receiver segments it in software.
//   SEQUENCED (0x0A) on a flow's stream: type(1) stripe(4) seq(4), then one PACKET-family message
//          (PACKET, PACKET_HC, PACKET_GSO, PACKET_GSO_HC). One packet of a striped flow: a flow
//          whose packets the sender spreads over several associations (one per path). stripe
//          names the flow (the sender's number, per peer), seq counts its packets from 0 (modulo
//          2^32); the receiver rebuilds the packet on the stream it came on, then hands the
//          flow's packets to its TUN in seq order (resequencer.hpp). Only when both HELLOs
//          announce striping.
// A side sends PACKET messages only after it has received the peer's HELLO, and accepts them only
// after it has received the peer's HELLO.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "src/crypto/session.hpp"

namespace gateway::wire {

inline constexpr std::uint8_t kVersion = 2;          // 2: roles bound into AUTH and the keys
inline constexpr std::uint32_t kMagic = 0x53435444;  // "SCTD"
inline constexpr std::uint16_t kControlStream = 0;

enum class Type : std::uint8_t {
  hello = 0x01,
  packet = 0x02,
  packet_gso = 0x03,
  packet_hc = 0x04,      // PACKET with its header compressed (src/codec/header_codec.hpp)
  packet_gso_hc = 0x05,  // PACKET_GSO with its header compressed
  context_reset = 0x06,  // stream 0: "my decompressor of stream N lost step: start it anew"
  bundle = 0x07,         // several small PACKET / PACKET_HC messages of one stream
  auth = 0x08,           // stream 0: proof of the pre-shared key over both HELLOs
  sealed = 0x09,         // an AEAD-protected inner message
  sequenced = 0x0a,      // one packet of a striped flow, numbered: stripe, seq, PACKET message
};

// Capability bits announced in HELLO; the used set is the intersection of both sides'.
enum Capability : std::uint32_t {
  kCapCompression = 1u << 0,  // sends and accepts PACKET_HC / PACKET_GSO_HC / CONTEXT_RESET
  kCapBundle = 1u << 1,       // accepts BUNDLE
  kCapAuth = 1u << 2,         // holds a pre-shared key: HELLO carries kExtNonce, AUTH follows
  kCapSealed = 1u << 3,       // seals every message after AUTH (and requires the peer to)
  kCapAesGcm = 1u << 4,       // can use AES-256-GCM (else ChaCha20-Poly1305 is used)
  kCapFec = 1u << 5,          // takes FEC-framed datagrams and parity on its paths (udp transport,
                              // with a key: parity is authenticated; doc/PROTOCOL.md "FEC")
  kCapStripe = 1u << 6,       // sends and accepts SEQUENCED: flows striped over associations
};
// HELLO extension types.
enum Ext : std::uint8_t {
  kExtNonce = 1,  // 32 random bytes, fresh per association
};
struct AuthLayout {
  std::uint8_t type;
  std::uint8_t proof[crypto::kProofSize];
};
inline constexpr std::size_t kAuthSize = sizeof(AuthLayout);
static_assert(kAuthSize == 1 + 32);

struct ContextResetLayout {
  std::uint8_t type;
  std::uint8_t stream[2];
};
inline constexpr std::size_t kContextResetSize = sizeof(ContextResetLayout);
static_assert(kContextResetSize == 3);

// SEALED: type(1), then what the AEAD seals or opens in place: the inner message's ciphertext and
// its tag.
inline constexpr std::size_t kSealedHeaderSize = 1;
inline constexpr std::size_t kSealedTagSize = crypto::kTagSize;
static_assert(kSealedTagSize == 16);

struct SequencedLayout {
  std::uint8_t type;
  std::uint8_t stripe[4];
  std::uint8_t seq[4];
};
inline constexpr std::size_t kSequencedHeaderSize = sizeof(SequencedLayout);
static_assert(kSequencedHeaderSize == 9);

struct HelloFixed {
  std::uint8_t type;
  std::uint8_t version;
  std::uint8_t reserved[2];
  std::uint8_t magic[4];
  std::uint8_t capabilities[4];
  std::uint8_t instance[4];
};
static_assert(sizeof(HelloFixed) == 16);
inline constexpr std::size_t kHelloFixedSize = sizeof(HelloFixed);
inline constexpr std::size_t kPacketHeaderSize = 1;
inline constexpr std::size_t kGsoMetaSize = 10;  // the virtio-net header after the type byte
inline constexpr std::size_t kMaxHelloSize = 512;

struct Extension {
  std::uint8_t type = 0;
  std::vector<std::uint8_t> value;  // at most 255 bytes
};

struct Hello {
  std::uint8_t version = kVersion;
  std::uint32_t capabilities = 0;
  std::uint32_t instance = 0;  // random per daemon start: tells the peer we restarted
  std::vector<Extension> extensions;
};

enum class DecodeError : std::uint8_t {
  none,
  empty,
  unknown_type,
  truncated,
  bad_magic,
  bad_extension,
  too_large,
};
const char* to_string(DecodeError error);

// A message split into its type and body (the bytes after the type byte).
struct Message {
  Type type{};
  std::span<const std::uint8_t> body;
};

DecodeError decode(std::span<const std::uint8_t> bytes, Message& out);

std::vector<std::uint8_t> encode_hello(const Hello& hello);
// Decodes a whole HELLO message (type byte included).
DecodeError decode_hello(std::span<const std::uint8_t> bytes, Hello& out);

// BUNDLE items: their length prefix, and the reader that splits a BUNDLE body.
inline constexpr std::size_t kMaxBundleItem = 0x7fff;
inline constexpr std::size_t bundle_length_size(std::size_t item_len) {
  return item_len < 0x80 ? 1 : 2;
}
// Writes the length prefix of an item of item_len (<= kMaxBundleItem) bytes; returns its size.
std::size_t write_bundle_length(std::uint8_t* out, std::size_t item_len);
// Takes the next item off the front of rest. truncated: the rest is malformed (a length past
// its end, or an empty item); rest is then left empty.
DecodeError next_bundle_item(std::span<const std::uint8_t>& rest,
                             std::span<const std::uint8_t>& item);

// The whole AUTH message carrying proof.
std::array<std::uint8_t, kAuthSize> encode_auth(const crypto::Proof& proof);
// Decodes a whole AUTH message (type byte included): proof is then the proof inside bytes.
// truncated: not exactly kAuthSize bytes; unknown_type: another type.
DecodeError decode_auth(std::span<const std::uint8_t> bytes, std::span<const std::uint8_t>& proof);

// The whole CONTEXT_RESET message for stream.
std::array<std::uint8_t, kContextResetSize> encode_context_reset(std::uint16_t stream);
// Decodes a whole CONTEXT_RESET message (type byte included) into stream. truncated: not exactly
// kContextResetSize bytes; unknown_type: another type.
DecodeError decode_context_reset(std::span<const std::uint8_t> bytes, std::uint16_t& stream);

// The size of the SEALED form of an inner message of inner_size bytes.
inline constexpr std::size_t sealed_size(std::size_t inner_size) {
  return kSealedHeaderSize + inner_size + kSealedTagSize;
}
// Writes the SEALED type byte at the front of out (sealed_size() bytes) and returns the rest of
// out: where the AEAD writes the ciphertext and tag.
std::span<std::uint8_t> begin_sealed(std::span<std::uint8_t> out);
// Whether msg is a SEALED message (judged by its type byte alone).
bool is_sealed(std::span<const std::uint8_t> msg);
// What the AEAD opens of a SEALED message: everything after the type byte (ciphertext and tag;
// shorter than a tag only when malformed). Once opened, the inner message is
// msg[kSealedHeaderSize, size - kSealedTagSize).
std::span<std::uint8_t> sealed_body(std::span<std::uint8_t> msg);

// SEQUENCED: writes its header into the kSequencedHeaderSize bytes in front of a PACKET-family
// message; reads it back. decode_sequenced: truncated without a PACKET-family type byte after the
// header, unknown_type when it is another type (or the message is no SEQUENCED).
void write_sequenced_header(std::span<std::uint8_t> header, std::uint32_t stripe,
                            std::uint32_t seq);
struct Sequenced {
  std::uint32_t stripe = 0, seq = 0;
  Type inner{};  // the type of the PACKET-family message after the header
};
DecodeError decode_sequenced(std::span<const std::uint8_t> bytes, Sequenced& out);

// What a PACKET-family type says of the bytes that follow its type byte.
struct PacketForm {
  bool gso = false;         // a kGsoMetaSize virtio-net header first (PACKET_GSO, PACKET_GSO_HC)
  bool compressed = false;  // the IP header compressed (PACKET_HC, PACKET_GSO_HC)
  bool operator==(const PacketForm&) const = default;
};
// The form of packet, packet_gso, packet_hc and packet_gso_hc (any other type: plain PACKET's).
PacketForm packet_form(Type type);
// The type of a PACKET-family message of that form.
Type packet_type(PacketForm form);

// Writes the PACKET header into the kPacketHeaderSize bytes in front of an IP packet.
inline void write_packet_header(std::span<std::uint8_t> header, Type type = Type::packet) {
  header[0] = static_cast<std::uint8_t>(type);
}

}  // namespace gateway::wire
