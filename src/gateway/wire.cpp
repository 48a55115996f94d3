#include "src/gateway/wire.hpp"

#include <algorithm>
#include <cstddef>

#include "src/base/bytes.hpp"

namespace gateway::wire {

const char* to_string(DecodeError error) {
  switch (error) {
    case DecodeError::none:
      return "none";
    case DecodeError::empty:
      return "empty";
    case DecodeError::unknown_type:
      return "unknown_type";
    case DecodeError::truncated:
      return "truncated";
    case DecodeError::bad_magic:
      return "bad_magic";
    case DecodeError::bad_extension:
      return "bad_extension";
    case DecodeError::too_large:
      return "too_large";
  }
  return "unknown";
}

DecodeError decode(std::span<const std::uint8_t> bytes, Message& out) {
  if (bytes.empty()) return DecodeError::empty;
  switch (static_cast<Type>(bytes[0])) {
    case Type::hello:
    case Type::packet:
    case Type::packet_gso:
    case Type::packet_hc:
    case Type::packet_gso_hc:
    case Type::context_reset:
    case Type::bundle:
    case Type::auth:
    case Type::sealed:
    case Type::sequenced:
      out.type = static_cast<Type>(bytes[0]);
      out.body = bytes.subspan(1);
      return DecodeError::none;
  }
  return DecodeError::unknown_type;
}

std::size_t write_bundle_length(std::uint8_t* out, std::size_t item_len) {
  if (item_len < 0x80) {
    out[0] = static_cast<std::uint8_t>(item_len);
    return 1;
  }
  out[0] = static_cast<std::uint8_t>(0x80 | item_len >> 8);
  out[1] = static_cast<std::uint8_t>(item_len);
  return 2;
}

DecodeError next_bundle_item(std::span<const std::uint8_t>& rest,
                             std::span<const std::uint8_t>& item) {
  std::size_t len = 0, prefix = 1;
  if (!rest.empty()) {
    len = rest[0];
    if (len & 0x80) {
      prefix = 2;
      len = rest.size() >= 2 ? (len & 0x7f) << 8 | rest[1] : 0;
    }
  }
  if (len == 0 || rest.size() < prefix + len) {
    rest = {};
    return DecodeError::truncated;
  }
  item = rest.subspan(prefix, len);
  rest = rest.subspan(prefix + len);
  return DecodeError::none;
}

std::vector<std::uint8_t> encode_hello(const Hello& hello) {
  std::vector<std::uint8_t> out(kHelloFixedSize);
  HelloFixed fixed{};
  fixed.type = static_cast<std::uint8_t>(Type::hello);
  fixed.version = hello.version;
  base::store_be32(fixed.magic, kMagic);
  base::store_be32(fixed.capabilities, hello.capabilities);
  base::store_be32(fixed.instance, hello.instance);
  std::copy_n(reinterpret_cast<const std::uint8_t*>(&fixed), kHelloFixedSize, out.begin());
  for (const Extension& ext : hello.extensions) {
    std::size_t len = ext.value.size() > 255 ? 255 : ext.value.size();
    out.push_back(ext.type);
    out.push_back(static_cast<std::uint8_t>(len));
    out.insert(out.end(), ext.value.begin(), ext.value.begin() + static_cast<std::ptrdiff_t>(len));
  }
  return out;
}

DecodeError decode_hello(std::span<const std::uint8_t> bytes, Hello& out) {
  if (bytes.empty()) return DecodeError::empty;
  if (bytes[0] != static_cast<std::uint8_t>(Type::hello)) return DecodeError::unknown_type;
  if (bytes.size() < kHelloFixedSize) return DecodeError::truncated;
  if (bytes.size() > kMaxHelloSize) return DecodeError::too_large;
  const std::uint8_t* p = bytes.data();
  if (base::load_be32(p + 4) != kMagic) return DecodeError::bad_magic;
  out = Hello{};
  out.version = p[1];
  out.capabilities = base::load_be32(p + 8);
  out.instance = base::load_be32(p + 12);
  std::size_t offset = kHelloFixedSize;
  while (offset < bytes.size()) {
    if (offset + 2 > bytes.size()) return DecodeError::bad_extension;
    std::size_t len = bytes[offset + 1];
    if (offset + 2 + len > bytes.size()) return DecodeError::bad_extension;
    Extension ext;
    ext.type = bytes[offset];
    ext.value.assign(bytes.begin() + static_cast<std::ptrdiff_t>(offset + 2),
                     bytes.begin() + static_cast<std::ptrdiff_t>(offset + 2 + len));
    out.extensions.push_back(std::move(ext));
    offset += 2 + len;
  }
  return DecodeError::none;
}

std::array<std::uint8_t, kAuthSize> encode_auth(const crypto::Proof& proof) {
  std::array<std::uint8_t, kAuthSize> out{};
  out[offsetof(AuthLayout, type)] = static_cast<std::uint8_t>(Type::auth);
  std::copy(proof.begin(), proof.end(), out.begin() + offsetof(AuthLayout, proof));
  return out;
}

DecodeError decode_auth(std::span<const std::uint8_t> bytes, std::span<const std::uint8_t>& proof) {
  if (bytes.empty()) return DecodeError::empty;
  if (bytes[0] != static_cast<std::uint8_t>(Type::auth)) return DecodeError::unknown_type;
  if (bytes.size() != kAuthSize) return DecodeError::truncated;
  proof = bytes.subspan(offsetof(AuthLayout, proof), crypto::kProofSize);
  return DecodeError::none;
}

std::array<std::uint8_t, kContextResetSize> encode_context_reset(std::uint16_t stream) {
  std::array<std::uint8_t, kContextResetSize> out{};
  out[offsetof(ContextResetLayout, type)] = static_cast<std::uint8_t>(Type::context_reset);
  base::store_be16(out.data() + offsetof(ContextResetLayout, stream), stream);
  return out;
}

DecodeError decode_context_reset(std::span<const std::uint8_t> bytes, std::uint16_t& stream) {
  if (bytes.empty()) return DecodeError::empty;
  if (bytes[0] != static_cast<std::uint8_t>(Type::context_reset)) return DecodeError::unknown_type;
  if (bytes.size() != kContextResetSize) return DecodeError::truncated;
  stream = base::load_be16(bytes.data() + offsetof(ContextResetLayout, stream));
  return DecodeError::none;
}

std::span<std::uint8_t> begin_sealed(std::span<std::uint8_t> out) {
  out[0] = static_cast<std::uint8_t>(Type::sealed);
  return out.subspan(kSealedHeaderSize);
}

bool is_sealed(std::span<const std::uint8_t> msg) {
  return !msg.empty() && msg[0] == static_cast<std::uint8_t>(Type::sealed);
}

std::span<std::uint8_t> sealed_body(std::span<std::uint8_t> msg) {
  return msg.subspan(kSealedHeaderSize);
}

void write_sequenced_header(std::span<std::uint8_t> header, std::uint32_t stripe,
                            std::uint32_t seq) {
  header[0] = static_cast<std::uint8_t>(Type::sequenced);
  base::store_be32(header.data() + 1, stripe);
  base::store_be32(header.data() + 5, seq);
}

DecodeError decode_sequenced(std::span<const std::uint8_t> bytes, Sequenced& out) {
  if (bytes.empty() || bytes[0] != static_cast<std::uint8_t>(Type::sequenced))
    return DecodeError::unknown_type;
  if (bytes.size() <= kSequencedHeaderSize) return DecodeError::truncated;
  auto inner = static_cast<Type>(bytes[kSequencedHeaderSize]);
  if (inner != Type::packet && inner != Type::packet_hc && inner != Type::packet_gso &&
      inner != Type::packet_gso_hc)
    return DecodeError::unknown_type;
  out.stripe = base::load_be32(bytes.data() + 1);
  out.seq = base::load_be32(bytes.data() + 5);
  out.inner = inner;
  return DecodeError::none;
}

PacketForm packet_form(Type type) {
  return {type == Type::packet_gso || type == Type::packet_gso_hc,
          type == Type::packet_hc || type == Type::packet_gso_hc};
}

Type packet_type(PacketForm form) {
  if (form.gso) return form.compressed ? Type::packet_gso_hc : Type::packet_gso;
  return form.compressed ? Type::packet_hc : Type::packet;
}

}  // namespace gateway::wire
