// The Decompressor (header_codec.hpp): messages back into byte-exact packets, contexts made,
// refreshed and evicted as the compressor's messages say.
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "src/base/bytes.hpp"
#include "src/codec/header_codec_detail.hpp"

namespace codec {

using namespace detail;

// ---------------------------------------------------------------------------------------------
// Decompressor

const char* to_string(Error error) {
  switch (error) {
    case Error::none:
      return "none";
    case Error::empty:
      return "empty";
    case Error::truncated:
      return "truncated";
    case Error::unknown_form:
      return "unknown_form";
    case Error::bad_field:
      return "bad_field";
    case Error::unknown_context:
      return "unknown_context";
    case Error::wrong_context:
      return "wrong_context";
    case Error::bad_full_header:
      return "bad_full_header";
    case Error::too_long:
      return "too_long";
    case Error::no_room:
      return "no_room";
  }
  return "unknown";
}

void Decompressor::reset() {
  if (budget_) *budget_ += contexts_.capacity();
  contexts_.clear();
  contexts_.shrink_to_fit();
  last_cid_ = -1;
}

bool Decompressor::make_room(std::uint32_t cid) {
  if (cid < contexts_.size()) return true;
  if (cid >= max_contexts_) return false;
  std::size_t want = std::size_t{cid} + 1;
  if (want > contexts_.capacity()) {
    // The budget pays for allocated slots (capacity), not used ones, so it bounds real memory;
    // growth in steps of 64 keeps the copies few, an exact fit is the last resort.
    std::size_t have = contexts_.capacity();
    std::size_t cap = std::min(max_contexts_, (want + 63) / 64 * 64);
    if (budget_ && *budget_ < cap - have) cap = want;
    if (budget_ && *budget_ < cap - have) return false;
    std::vector<detail::Context> grown;
    grown.reserve(cap);  // exactly cap: libstdc++ reserves what is asked
    grown.assign(contexts_.begin(), contexts_.end());
    contexts_.swap(grown);
    if (budget_) *budget_ -= contexts_.capacity() - have;
  }
  contexts_.resize(want);
  return true;
}

Error Decompressor::decode(std::span<const std::uint8_t> msg, std::span<std::uint8_t> out_header,
                           Decoded& out) {
  ++stats_.packets;
  Error e = decode_one(msg, out_header, out);
  if (e != Error::none) ++stats_.errors;
  return e;
}

Error Decompressor::decode_one(std::span<const std::uint8_t> msg,
                               std::span<std::uint8_t> out_header, Decoded& out) {
  if (msg.empty()) return Error::empty;
  std::uint8_t first = msg[0];
  Reader r{msg.data(), msg.size(), 1};

  if (first == 0) {  // ESCAPE
    if (msg.size() < 2) return Error::truncated;
    out = {0, 1, Form::escape};
    ++stats_.escaped;
    return Error::none;
  }

  if (first <= kFormFull + kCsumNone) {  // FULL
    std::uint32_t cid = r.varint(kMaxContexts - 1);
    if (!r.ok) return reader_error(r);
    auto packet = msg.subspan(r.pos);
    Parsed p;
    auto mode = static_cast<std::uint8_t>(first - kFormFull);
    if (!analyze(packet, p) || (mode == kCsumNone && p.proto != IPPROTO_UDP) ||
        base::load_be16(packet.data() + p.ip_len + l4_csum_offset(p.proto)) !=
            l4_checksum(packet.data(), p, packet.subspan(std::size_t{p.ip_len} + p.l4_len), mode))
      return Error::bad_full_header;
    std::size_t header_len = std::size_t{p.ip_len} + p.l4_len;
    if (out_header.size() < header_len) return Error::no_room;
    std::memcpy(out_header.data(), packet.data(), header_len);
    if (!make_room(cid)) return Error::no_room;
    store(contexts_[cid], packet.data(), p, mode, true);
    last_cid_ = static_cast<int>(cid);
    out = {header_len, r.pos + header_len, Form::full};
    ++stats_.full;
    return Error::none;
  }

  if (first >= kFormDiff && first <= kFormDiff + kCsumNone) {  // DIFF
    std::uint32_t cid = r.varint(kMaxContexts - 1);
    std::uint32_t base_cid = r.varint(kMaxContexts - 1);
    std::uint8_t len = r.u8();
    if (!r.ok) return reader_error(r);
    if (base_cid >= contexts_.size() || !contexts_[base_cid].live) return Error::unknown_context;
    const Context& base = contexts_[base_cid];
    if (len > sizeof base.first) return Error::bad_field;
    std::uint8_t bitmap[(sizeof base.first + 7) / 8];
    for (std::size_t i = 0; i < (len + 7u) / 8; ++i) bitmap[i] = r.u8();
    if (!r.ok) return reader_error(r);
    std::uint8_t hdr[kMaxHeaderSize] = {};
    std::memcpy(hdr, base.first.data(), std::min<std::size_t>(len, base.first_len));
    for (std::size_t j = 0; j < len; ++j) {
      if (!(bitmap[j / 8] & (0x80 >> (j % 8)))) continue;
      std::uint8_t v = r.u8();
      if (r.ok && v == hdr[j]) return Error::bad_field;  // marked as changed, but is not
      hdr[j] = v;
    }
    if (len % 8 && bitmap[len / 8] & (0xff >> (len % 8))) return Error::bad_field;
    if (!r.ok) return reader_error(r);
    Parsed p;
    auto mode = static_cast<std::uint8_t>(first - kFormDiff);
    std::uint8_t shaped[kMaxHeaderSize];
    std::memcpy(shaped, hdr, len);
    if (!parse_shape(hdr, len, p) || std::size_t{p.ip_len} + p.l4_len != len ||
        (mode == kCsumNone && p.proto != IPPROTO_UDP))
      return Error::bad_full_header;
    shape(shaped, p);
    if (std::memcmp(shaped, hdr, len) != 0) return Error::bad_full_header;  // lengths, sums: 0
    auto payload = msg.subspan(r.pos);
    p.payload_len = static_cast<std::uint32_t>(payload.size());
    if (!finish_header(hdr, p, mode, payload)) return Error::too_long;
    if (out_header.size() < len) return Error::no_room;
    std::memcpy(out_header.data(), hdr, len);
    if (!make_room(cid)) return Error::no_room;
    store(contexts_[cid], hdr, p, mode, true);
    last_cid_ = static_cast<int>(cid);
    out = {len, r.pos, Form::full};
    ++stats_.full;
    return Error::none;
  }

  bool tcp = first & 0x80;
  if (!tcp && (first & 0xc0) != 0x40) return Error::unknown_form;
  int cid = last_cid_;
  if (tcp ? (first & 0x40) : (first & kUdpC)) {
    cid = static_cast<int>(r.varint(kMaxContexts - 1));
    if (!r.ok) return reader_error(r);
  }
  if (cid < 0 || static_cast<std::size_t>(cid) >= contexts_.size() || !contexts_[cid].live)
    return Error::unknown_context;
  Context& c = contexts_[cid];
  if ((c.proto == IPPROTO_TCP) != tcp) return Error::wrong_context;

  std::uint8_t hdr[kMaxHeaderSize];
  Parsed p;
  std::uint8_t mode = c.mode;
  Error e = tcp ? decode_tcp(first, c, r, hdr, p, mode) : decode_udp(first, c, r, hdr, p, mode);
  if (e != Error::none) return e;
  auto payload = msg.subspan(r.pos);
  p.payload_len = static_cast<std::uint32_t>(payload.size());
  std::size_t header_len = std::size_t{p.ip_len} + p.l4_len;
  if (!finish_header(hdr, p, mode, payload)) return Error::too_long;
  if (out_header.size() < header_len) return Error::no_room;
  std::memcpy(out_header.data(), hdr, header_len);
  store(c, hdr, p, mode, false);
  last_cid_ = cid;
  out = {header_len, r.pos, Form::compressed};
  ++stats_.compressed;
  return Error::none;
}

}  // namespace codec
