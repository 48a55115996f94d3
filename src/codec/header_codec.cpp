#include "src/codec/header_codec_detail.hpp"

#include "src/base/checksum.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cstring>

// The forms, their first bytes and the rules both sides follow are described in the header.
// This file: checksums, header analysis, contexts, FULL/ESCAPE/UDP and the Compressor; the
// Decompressor is in header_codec_decompressor.cpp, the TCP compressed form and the IPF fields
// in header_codec_tcp.cpp.

namespace codec {
namespace detail {
namespace {

using base::checksum::fold;

std::uint16_t ipv4_header_checksum(const std::uint8_t* ip) {
  std::uint64_t acc = base::checksum::partial(ip, 10, 0);
  acc = base::checksum::partial(ip + 12, 8, acc);
  return static_cast<std::uint16_t>(~fold(acc));
}

std::uint64_t pseudo_sum(const std::uint8_t* hdr, const Parsed& p, std::size_t l4_total) {
  std::uint8_t ph[40] = {};
  if (p.version == 4) {
    std::memcpy(ph, hdr + 12, 8);
    ph[9] = p.proto;
    base::store_be16(ph + 10, static_cast<std::uint16_t>(l4_total));
    return base::checksum::partial(ph, 12, 0);
  }
  std::memcpy(ph, hdr + 8, 32);  // source, destination, upper-layer length, 0, next header
  base::store_be32(ph + 32, static_cast<std::uint32_t>(l4_total));
  ph[39] = p.proto;
  return base::checksum::partial(ph, 40, 0);
}

std::size_t varint_len(std::uint32_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Which checksum mode describes the packet exactly; false if none does (escape).
bool pick_mode(std::span<const std::uint8_t> packet, const Parsed& p, bool partial,
               std::uint8_t& mode) {
  std::uint16_t field = base::load_be16(packet.data() + p.ip_len + l4_csum_offset(p.proto));
  auto payload = packet.subspan(std::size_t{p.ip_len} + p.l4_len);
  if (partial) {
    mode = kCsumPartial;
  } else if (p.proto == IPPROTO_UDP && field == 0) {
    mode = kCsumNone;
    return true;
  } else {
    mode = kCsumComplete;
  }
  return field == l4_checksum(packet.data(), p, payload, mode);
}

// The DIFF form of a new context's header against the first header of another context.
void encode_diff(const std::uint8_t* base, std::size_t base_len, const std::uint8_t* hdr,
                 const Parsed& p, std::uint8_t mode, std::uint32_t cid, std::uint32_t base_cid,
                 Writer& w) {
  std::size_t len = std::size_t{p.ip_len} + p.l4_len;
  std::uint8_t now[100];
  std::memcpy(now, hdr, len);
  shape(now, p);
  w.u8(static_cast<std::uint8_t>(kFormDiff + mode));
  w.varint(cid);
  w.varint(base_cid);
  w.u8(static_cast<std::uint8_t>(len));
  for (std::size_t i = 0; i < len; i += 8) {
    std::uint8_t bits = 0;
    for (std::size_t j = i; j < len && j < i + 8; ++j)
      if (now[j] != (j < base_len ? base[j] : 0))
        bits |= static_cast<std::uint8_t>(0x80 >> (j - i));
    w.u8(bits);
  }
  for (std::size_t j = 0; j < len; ++j)
    if (now[j] != (j < base_len ? base[j] : 0)) w.u8(now[j]);
}

void encode_udp(const Context& c, const std::uint8_t* hdr, const Parsed& p, std::uint8_t mode,
                int cid, Writer& w) {
  std::uint8_t first = 0x40;
  if (cid >= 0) first |= kUdpC;
  std::uint8_t ipf = ipf_changes(c, hdr, p, mode);
  if (ipf) first |= kUdpF;
  std::uint16_t id_delta = 0;
  if (p.version == 4) {
    id_delta =
        static_cast<std::uint16_t>(base::load_be16(hdr + 4) - base::load_be16(c.hdr.data() + 4));
    if (id_delta != c.id_delta) first |= kUdpI;
  }
  w.u8(first);
  if (cid >= 0) w.varint(static_cast<std::uint32_t>(cid));
  if (ipf) write_ipf(w, ipf, hdr, p, mode);
  if (first & kUdpI) w.varint(id_delta);
}

}  // namespace

Error decode_udp(std::uint8_t first, const Context& c, Reader& r, std::uint8_t* hdr, Parsed& p,
                 std::uint8_t& mode) {
  if (first & 0x07) return Error::bad_field;
  std::memcpy(hdr, c.hdr.data(), std::size_t{c.ip_len} + c.l4_len);
  p = Parsed{c.version, c.proto, c.ip_len, c.l4_len, 0, {}};
  mode = c.mode;
  if (first & kUdpF) {
    if (Error e = read_ipf(r, hdr, p, mode); e != Error::none) return e;
  }
  if (p.version == 4) {
    std::uint16_t delta = c.id_delta;
    if (first & kUdpI) {
      delta = static_cast<std::uint16_t>(r.varint(0xffff));
      if (!r.ok) return reader_error(r);
      if (delta == c.id_delta) return Error::bad_field;  // would not have been sent
    }
    base::store_be16(hdr + 4, static_cast<std::uint16_t>(base::load_be16(hdr + 4) + delta));
  } else if (first & kUdpI) {
    return Error::bad_field;
  }
  return Error::none;
}

bool finish_header(std::uint8_t* hdr, const Parsed& p, std::uint8_t mode,
                   std::span<const std::uint8_t> payload) {
  std::size_t l4_total = p.l4_len + payload.size();
  if (p.version == 4) {
    if (20 + l4_total > 0xffff) return false;
    base::store_be16(hdr + 2, static_cast<std::uint16_t>(20 + l4_total));
    base::store_be16(hdr + 10, ipv4_header_checksum(hdr));
  } else {
    if (l4_total > 0xffff) return false;
    base::store_be16(hdr + 4, static_cast<std::uint16_t>(l4_total));
  }
  if (p.proto == IPPROTO_UDP)
    base::store_be16(hdr + p.ip_len + 4, static_cast<std::uint16_t>(l4_total));
  base::store_be16(hdr + p.ip_len + l4_csum_offset(p.proto), l4_checksum(hdr, p, payload, mode));
  return true;
}

OptLayout parse_options(const std::uint8_t* opts, std::size_t len) {
  OptLayout layout;
  layout.len = static_cast<std::uint8_t>(len);
  std::size_t i = 0;
  while (i < len) {
    std::uint8_t kind = opts[i];
    if (kind == 0) break;  // EOL: what follows is padding, static
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= len) break;  // malformed: the rest is static
    std::size_t l = opts[i + 1];
    if (l < 2 || i + l > len) break;
    if (kind == 8 && l == 10 && layout.ts == kNone) layout.ts = static_cast<std::uint8_t>(i + 2);
    if (kind == 5 && l >= 10 && (l - 2) % 8 == 0 && layout.sack == kNone) {
      layout.sack = static_cast<std::uint8_t>(i + 2);
      layout.sack_blocks = static_cast<std::uint8_t>((l - 2) / 8);
    }
    i += l;
  }
  return layout;
}

void mask_options(const std::uint8_t* opts, const OptLayout& layout, std::uint8_t* out) {
  std::memcpy(out, opts, layout.len);
  if (layout.ts != kNone) std::memset(out + layout.ts, 0, 8);
  if (layout.sack != kNone) std::memset(out + layout.sack, 0, 8u * layout.sack_blocks);
}

bool parse_shape(const std::uint8_t* h, std::size_t n, Parsed& out) {
  out = Parsed{};
  if (n < 20) return false;
  if (h[0] == 0x45) {
    if ((h[6] & 0x3f) != 0 || h[7] != 0) return false;  // MF or a fragment offset
    out.version = 4;
    out.ip_len = 20;
    out.proto = h[9];
  } else if ((h[0] >> 4) == 6 && n >= 40) {
    out.version = 6;
    out.ip_len = 40;
    out.proto = h[6];
  } else {
    return false;  // not IP, or IPv4 with options
  }
  const std::uint8_t* l4 = h + out.ip_len;
  std::size_t l4_room = n - out.ip_len;
  if (out.proto == IPPROTO_TCP) {
    if (l4_room < 20) return false;
    std::size_t len = (l4[12] >> 4) * 4u;
    if (len < 20 || len > l4_room) return false;
    out.l4_len = static_cast<std::uint8_t>(len);
    out.opts = parse_options(l4 + 20, len - 20);
  } else if (out.proto == IPPROTO_UDP) {
    if (l4_room < 8) return false;
    out.l4_len = 8;
  } else {
    return false;
  }
  return true;
}

bool analyze(std::span<const std::uint8_t> packet, Parsed& out) {
  const std::uint8_t* h = packet.data();
  std::size_t n = packet.size();
  if (!parse_shape(h, n, out)) return false;
  if (out.version == 4
          ? base::load_be16(h + 2) != n || base::load_be16(h + 10) != ipv4_header_checksum(h)
          : 40u + base::load_be16(h + 4) != n)
    return false;
  std::size_t l4_total = n - out.ip_len;
  if (out.proto == IPPROTO_UDP && base::load_be16(h + out.ip_len + 4) != l4_total) return false;
  out.payload_len = static_cast<std::uint32_t>(l4_total - out.l4_len);
  return true;
}

void shape(std::uint8_t* hdr, const Parsed& p) {
  if (p.version == 4) {
    base::store_be16(hdr + 2, 0);
    base::store_be16(hdr + 10, 0);
  } else {
    base::store_be16(hdr + 4, 0);
  }
  if (p.proto == IPPROTO_UDP) base::store_be16(hdr + p.ip_len + 4, 0);
  base::store_be16(hdr + p.ip_len + l4_csum_offset(p.proto), 0);
}

std::uint16_t l4_checksum(const std::uint8_t* hdr, const Parsed& p,
                          std::span<const std::uint8_t> payload, std::uint8_t mode) {
  if (mode == kCsumNone) return 0;
  std::uint64_t acc = pseudo_sum(hdr, p, p.l4_len + payload.size());
  if (mode == kCsumPartial) return fold(acc);
  const std::uint8_t* l4 = hdr + p.ip_len;
  std::size_t off = l4_csum_offset(p.proto);
  acc = base::checksum::partial(l4, off, acc);
  acc = base::checksum::partial(l4 + off + 2, p.l4_len - off - 2, acc);
  acc = base::checksum::partial(payload.data(), payload.size(), acc);
  auto sum = static_cast<std::uint16_t>(~fold(acc));
  if (p.proto == IPPROTO_UDP && sum == 0) sum = 0xffff;  // 0 means "no checksum" in UDP
  return sum;
}

void store(Context& c, const std::uint8_t* hdr, const Parsed& p, std::uint8_t mode, bool fresh) {
  std::size_t header_len = std::size_t{p.ip_len} + p.l4_len;
  if (fresh) {
    c.id_delta = 1;
    c.ack_delta = 0;
    c.tsval = c.tsecr = 0;
    std::memcpy(c.first.data(), hdr, header_len);
    c.first_len = static_cast<std::uint8_t>(header_len);
    shape(c.first.data(), p);
  } else {
    if (p.version == 4)
      c.id_delta =
          static_cast<std::uint16_t>(base::load_be16(hdr + 4) - base::load_be16(c.hdr.data() + 4));
    if (p.proto == IPPROTO_TCP) {
      std::uint32_t d =
          base::load_be32(hdr + p.ip_len + 8) - base::load_be32(c.hdr.data() + c.ip_len + 8);
      if (d != 0) c.ack_delta = d;
    }
  }
  std::memcpy(c.hdr.data(), hdr, header_len);
  c.ip_len = p.ip_len;
  c.l4_len = p.l4_len;
  c.version = p.version;
  c.proto = p.proto;
  c.mode = mode;
  c.live = true;
  c.opts = p.opts;
  if (p.proto == IPPROTO_TCP) {
    const std::uint8_t* tcp = hdr + p.ip_len;
    std::uint8_t flags = tcp[13];
    c.next_seq =
        base::load_be32(tcp + 4) + p.payload_len + (flags & 0x02 ? 1 : 0) + (flags & 0x01 ? 1 : 0);
    if (p.opts.ts != kNone) {
      c.tsval = base::load_be32(tcp + 20 + p.opts.ts);
      c.tsecr = base::load_be32(tcp + 24 + p.opts.ts);
    }
  }
}

}  // namespace detail

using namespace detail;

// ---------------------------------------------------------------------------------------------
// Compressor

Compressor::Compressor(std::size_t max_contexts)
    : max_contexts_(std::clamp<std::size_t>(max_contexts, 1, kMaxContexts)) {}

void Compressor::unlink(std::uint16_t cid) {
  Slot& s = slots_[cid];
  (s.prev == kNil ? head_ : slots_[s.prev].next) = s.next;
  (s.next == kNil ? tail_ : slots_[s.next].prev) = s.prev;
  s.prev = s.next = kNil;
}

void Compressor::push_front(std::uint16_t cid) {
  Slot& s = slots_[cid];
  s.prev = kNil;
  s.next = head_;
  (head_ == kNil ? tail_ : slots_[head_].prev) = cid;
  head_ = cid;
}

std::uint16_t Compressor::allocate(const base::packet::FlowKey& key) {
  std::uint16_t cid;
  if (!free_.empty()) {
    cid = free_.back();
    free_.pop_back();
  } else if (slots_.size() < max_contexts_) {
    cid = static_cast<std::uint16_t>(slots_.size());
    slots_.emplace_back();
  } else {
    cid = tail_;
    unlink(cid);
    index_.erase(slots_[cid].key);
    ++stats_.evicted;
  }
  slots_[cid].key = key;
  index_.emplace(key, cid);
  push_front(cid);
  return cid;
}

void Compressor::rollback() {
  if (undo_ == Undo::none) return;
  if (undo_ == Undo::restore)
    slots_[undo_cid_].ctx = undo_ctx_;
  else if (undo_ == Undo::created)
    forget(slots_[undo_cid_].key);  // the far side never saw it: a later packet starts anew
  last_cid_ = undo_last_cid_;
  std::uint64_t evicted = stats_.evicted;
  stats_ = undo_stats_;
  stats_.evicted = evicted;
  undo_ = Undo::none;
}

bool Compressor::forget(const base::packet::FlowKey& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  std::uint16_t cid = it->second;
  if (cid == undo_cid_ && (undo_ == Undo::restore || undo_ == Undo::created)) undo_ = Undo::stats;
  unlink(cid);
  slots_[cid].ctx.live = false;
  free_.push_back(cid);
  index_.erase(it);
  return true;
}

void Compressor::reset() {
  undo_ = Undo::none;
  slots_.clear();
  free_.clear();
  index_.clear();
  by_addresses_.clear();
  head_ = tail_ = kNil;
  last_cid_ = -1;
}

Encoded Compressor::escape(std::span<const std::uint8_t> packet, std::span<std::uint8_t> out) {
  if (out.empty()) return {};
  out[0] = 0;
  // The header it carries unchanged, as far as it can be told, for the statistics.
  base::packet::PacketView view;
  std::size_t header = std::min<std::size_t>(packet.size(), 20);
  if (base::packet::parse(packet, view) == base::packet::ParseError::none) {
    header = view.l3_header_len;
    std::size_t room = view.total_len - view.l3_header_len;
    if (!view.is_fragment && view.protocol == IPPROTO_TCP && room >= 20)
      header += std::min<std::size_t>(room, (packet[header + 12] >> 4) * 4u);
    else if (!view.is_fragment && view.protocol == IPPROTO_UDP)
      header += std::min<std::size_t>(room, 8);
  }
  ++stats_.escaped;
  stats_.inner_header_bytes += header;
  stats_.compressed_header_bytes += 1 + header;
  return {1, 0, Form::escape};
}

Encoded Compressor::encode(std::span<const std::uint8_t> packet, std::span<std::uint8_t> out,
                           bool partial_checksum) {
  undo_ = Undo::stats;
  undo_stats_ = stats_;
  undo_last_cid_ = last_cid_;
  ++stats_.packets;
  Parsed p;
  std::uint8_t mode = kCsumComplete;
  if (out.size() < kMaxEncodedSize || !analyze(packet, p) ||
      !pick_mode(packet, p, partial_checksum, mode))
    return escape(packet, out);

  base::packet::FlowKey key;
  key.version = p.version;
  key.protocol = p.proto;
  std::size_t alen = p.version == 4 ? 4 : 16;
  std::memcpy(key.src.data(), packet.data() + (p.version == 4 ? 12 : 8), alen);
  std::memcpy(key.dst.data(), packet.data() + (p.version == 4 ? 16 : 24), alen);
  key.src_port = base::load_be16(packet.data() + p.ip_len);
  key.dst_port = base::load_be16(packet.data() + p.ip_len + 2);

  std::size_t header_len = std::size_t{p.ip_len} + p.l4_len;
  std::uint16_t cid;
  if (auto it = index_.find(key); it != index_.end()) {
    cid = it->second;
    unlink(cid);
    push_front(cid);
    Context& c = slots_[cid].ctx;
    undo_ = Undo::restore;
    undo_cid_ = cid;
    undo_ctx_ = c;
    // Worth it only if smaller than the FULL form (which also bounds the expansion).
    Writer w{out.data(), header_len + varint_len(cid)};
    int explicit_cid = cid == last_cid_ ? -1 : cid;
    if (p.proto == IPPROTO_TCP)
      encode_tcp(c, packet.data(), p, mode, explicit_cid, w);
    else
      encode_udp(c, packet.data(), p, mode, explicit_cid, w);
    if (w.ok) {
      store(c, packet.data(), p, mode, false);
      last_cid_ = cid;
      ++stats_.compressed;
      stats_.inner_header_bytes += header_len;
      stats_.compressed_header_bytes += w.n;
      return {w.n, header_len, Form::compressed};
    }
  } else {
    // A new flow: against the first header of the latest flow between the same addresses
    // (a new connection to the same server), if that is smaller than FULL. The base is read
    // before allocate(), which may reuse its slot.
    base::packet::FlowKey pair = key;
    pair.src_port = pair.dst_port = 0;
    std::uint8_t base[100];
    std::size_t base_len = 0;
    int base_cid = -1;
    if (auto b = by_addresses_.find(pair); b != by_addresses_.end()) {
      const Slot& s = slots_[b->second];
      if (s.ctx.live && s.key.version == key.version && s.key.protocol == key.protocol &&
          s.key.src == key.src && s.key.dst == key.dst) {
        base_cid = b->second;
        base_len = s.ctx.first_len;
        std::memcpy(base, s.ctx.first.data(), base_len);
      }
    }
    cid = allocate(key);
    by_addresses_[pair] = cid;
    undo_ = Undo::created;
    undo_cid_ = cid;
    if (base_cid >= 0) {
      Writer w{out.data(), header_len + varint_len(cid)};  // smaller than FULL
      encode_diff(base, base_len, packet.data(), p, mode, cid, static_cast<std::uint32_t>(base_cid),
                  w);
      if (w.ok) {
        store(slots_[cid].ctx, packet.data(), p, mode, true);
        last_cid_ = cid;
        ++stats_.full_diff;
        stats_.inner_header_bytes += header_len;
        stats_.compressed_header_bytes += w.n;
        return {w.n, header_len, Form::full};
      }
    }
  }
  Writer w{out.data(), out.size()};
  w.u8(static_cast<std::uint8_t>(kFormFull + mode));
  w.varint(cid);
  w.bytes(packet.data(), header_len);
  store(slots_[cid].ctx, packet.data(), p, mode, true);
  last_cid_ = cid;
  ++stats_.full;
  stats_.inner_header_bytes += header_len;
  stats_.compressed_header_bytes += w.n;
  return {w.n, header_len, Form::full};
}

}  // namespace codec
