// The TCP compressed form of the header codec, and the IP-field changes (IPF) that the TCP and
// UDP forms share (layouts in header_codec.hpp).

#include <netinet/in.h>

#include <cstring>

#include "src/codec/header_codec_detail.hpp"

namespace codec::detail {
namespace {

// First byte: 1 C X P A W V R.
constexpr std::uint8_t kC = 0x40, kX = 0x20, kP = 0x10, kA = 0x08, kW = 0x04, kV = 0x02, kR = 0x01;
// Extension byte.
constexpr std::uint8_t kSeq = 0x01, kId = 0x02, kFlags = 0x04, kUrg = 0x08, kOpts = 0x10,
                       kIpf = 0x20;
constexpr std::uint8_t kPsh = 0x08;

constexpr std::uint8_t kKnownFirst = 0x80, kKnownLast = 0x87;
// IPF byte.
constexpr std::uint8_t kIpfTos = 0x01, kIpfTtl = 0x02, kIpfFrag = 0x04, kIpfTcpRes = 0x08,
                       kIpfMode = 0x10;

std::uint8_t traffic_class(const std::uint8_t* ip6) {
  return static_cast<std::uint8_t>(ip6[0] << 4 | ip6[1] >> 4);
}

// The option layouts sent as one byte, dynamic fields zeroed: 0 NOP NOP TS, 1..3 NOP NOP TS
// NOP NOP SACK(1..3), 4..7 NOP NOP SACK(1..4). Returns the length.
std::size_t known_template(int k, std::uint8_t* out) {
  std::size_t n = 0;
  if (k <= 3) {
    const std::uint8_t ts[12] = {1, 1, 8, 10};
    std::memcpy(out, ts, sizeof ts);
    n = sizeof ts;
  }
  int blocks = k <= 3 ? k : k - 3;
  if (blocks > 0) {
    out[n++] = 1;
    out[n++] = 1;
    out[n++] = 5;
    out[n++] = static_cast<std::uint8_t>(2 + 8 * blocks);
    std::memset(out + n, 0, 8u * blocks);
    n += 8u * blocks;
  }
  return n;
}

}  // namespace

std::uint8_t ipf_changes(const Context& c, const std::uint8_t* hdr, const Parsed& p,
                         std::uint8_t mode) {
  const std::uint8_t* o = c.hdr.data();
  std::uint8_t bits = 0;
  if (p.version == 4) {
    if (hdr[1] != o[1]) bits |= kIpfTos;
    if (hdr[8] != o[8]) bits |= kIpfTtl;
    if (hdr[6] != o[6]) bits |= kIpfFrag;
  } else {
    if (traffic_class(hdr) != traffic_class(o)) bits |= kIpfTos;
    if (hdr[7] != o[7]) bits |= kIpfTtl;
    if ((hdr[1] & 0x0f) != (o[1] & 0x0f) || hdr[2] != o[2] || hdr[3] != o[3]) bits |= kIpfFrag;
  }
  if (p.proto == IPPROTO_TCP && (hdr[p.ip_len + 12] & 0x0f) != (o[p.ip_len + 12] & 0x0f))
    bits |= kIpfTcpRes;
  if (mode != c.mode) bits |= kIpfMode;
  return bits;
}

void write_ipf(Writer& w, std::uint8_t bits, const std::uint8_t* hdr, const Parsed& p,
               std::uint8_t mode) {
  w.u8(bits);
  bool v4 = p.version == 4;
  if (bits & kIpfTos) w.u8(v4 ? hdr[1] : traffic_class(hdr));
  if (bits & kIpfTtl) w.u8(v4 ? hdr[8] : hdr[7]);
  if (bits & kIpfFrag) {
    if (v4) {
      w.u8(hdr[6]);
    } else {
      w.u8(hdr[1] & 0x0f);
      w.u8(hdr[2]);
      w.u8(hdr[3]);
    }
  }
  if (bits & kIpfTcpRes) w.u8(hdr[p.ip_len + 12] & 0x0f);
  if (bits & kIpfMode) w.u8(mode);
}

Error read_ipf(Reader& r, std::uint8_t* hdr, const Parsed& p, std::uint8_t& mode) {
  // hdr holds the previous header: every value sent must differ from it (the compressor sends
  // only changes), which also turns more garbage into errors.
  std::uint8_t bits = r.u8();
  bool v4 = p.version == 4, tcp = p.proto == IPPROTO_TCP;
  if (!r.ok) return reader_error(r);
  if (bits == 0 || bits & 0xe0 || (!tcp && (bits & kIpfTcpRes))) return Error::bad_field;
  bool same = false;
  if (bits & kIpfTos) {
    std::uint8_t v = r.u8();
    if (v4) {
      same |= hdr[1] == v;
      hdr[1] = v;
    } else {
      same |= traffic_class(hdr) == v;
      hdr[0] = static_cast<std::uint8_t>(0x60 | v >> 4);
      hdr[1] = static_cast<std::uint8_t>(v << 4 | (hdr[1] & 0x0f));
    }
  }
  if (bits & kIpfTtl) {
    std::uint8_t v = r.u8();
    same |= hdr[v4 ? 8 : 7] == v;
    hdr[v4 ? 8 : 7] = v;
  }
  if (bits & kIpfFrag) {
    if (v4) {
      std::uint8_t v = r.u8();
      if (v & 0x3f) return r.ok ? Error::bad_field : reader_error(r);  // DF, reserved: no frags
      same |= hdr[6] == v;
      hdr[6] = v;
    } else {
      std::uint8_t label[3] = {r.u8(), r.u8(), r.u8()};
      if (label[0] > 0x0f) return r.ok ? Error::bad_field : reader_error(r);
      same |= (hdr[1] & 0x0f) == label[0] && hdr[2] == label[1] && hdr[3] == label[2];
      hdr[1] = static_cast<std::uint8_t>((hdr[1] & 0xf0) | label[0]);
      hdr[2] = label[1];
      hdr[3] = label[2];
    }
  }
  if (bits & kIpfTcpRes) {
    std::uint8_t v = r.u8();
    if (v > 0x0f) return r.ok ? Error::bad_field : reader_error(r);
    same |= (hdr[p.ip_len + 12] & 0x0f) == v;
    hdr[p.ip_len + 12] = static_cast<std::uint8_t>((hdr[p.ip_len + 12] & 0xf0) | v);
  }
  if (bits & kIpfMode) {
    std::uint8_t v = r.u8();
    if (v > (tcp ? kCsumPartial : kCsumNone)) return r.ok ? Error::bad_field : reader_error(r);
    same |= v == mode;
    mode = v;
  }
  if (!r.ok) return reader_error(r);
  return same ? Error::bad_field : Error::none;
}

void encode_tcp(const Context& c, const std::uint8_t* hdr, const Parsed& p, std::uint8_t mode,
                int cid, Writer& w) {
  const std::uint8_t* o = c.hdr.data();
  const std::uint8_t* t = hdr + p.ip_len;
  const std::uint8_t* ot = o + c.ip_len;
  std::uint8_t first = 0x80, ext = 0;
  if (cid >= 0) first |= kC;

  std::uint8_t flags = t[13];
  if (flags & kPsh) first |= kP;
  if ((flags & ~kPsh) != (ot[13] & ~kPsh)) ext |= kFlags;
  std::uint32_t seq = base::load_be32(t + 4), ack = base::load_be32(t + 8);
  if (seq != c.next_seq) ext |= kSeq;
  if (ack != base::load_be32(ot + 8)) first |= kA;
  std::uint16_t win = base::load_be16(t + 14), owin = base::load_be16(ot + 14);
  if (win != owin) first |= kW;
  std::uint16_t id_delta = 0;
  if (p.version == 4) {
    id_delta = static_cast<std::uint16_t>(base::load_be16(hdr + 4) - base::load_be16(o + 4));
    if (id_delta != c.id_delta) ext |= kId;
  }
  if (base::load_be16(t + 18) != base::load_be16(ot + 18)) ext |= kUrg;

  std::uint8_t tpl[40], otpl[40];
  mask_options(t + 20, p.opts, tpl);
  mask_options(ot + 20, c.opts, otpl);
  if (!(p.opts == c.opts && std::memcmp(tpl, otpl, p.opts.len) == 0)) ext |= kOpts;
  std::uint32_t tsval = c.tsval, tsecr = c.tsecr;
  if (p.opts.ts != kNone) {
    tsval = base::load_be32(t + 20 + p.opts.ts);
    tsecr = base::load_be32(t + 24 + p.opts.ts);
    if (tsval != c.tsval) first |= kV;
    if (tsecr != c.tsecr) first |= kR;
  }
  std::uint8_t ipf = ipf_changes(c, hdr, p, mode);
  if (ipf) ext |= kIpf;
  if (ext) first |= kX;

  w.u8(first);
  if (cid >= 0) w.varint(static_cast<std::uint32_t>(cid));
  if (ext) w.u8(ext);
  if (ipf) write_ipf(w, ipf, hdr, p, mode);
  if (ext & kFlags) w.u8(flags & ~kPsh);
  if (ext & kOpts) {
    int code = -1;
    std::uint8_t known[40];
    for (int k = 0; k <= kKnownLast - kKnownFirst && code < 0; ++k)
      if (known_template(k, known) == p.opts.len && std::memcmp(known, tpl, p.opts.len) == 0)
        code = k;
    if (code >= 0) {
      w.u8(static_cast<std::uint8_t>(kKnownFirst + code));
    } else {
      w.u8(p.opts.len);
      w.bytes(tpl, p.opts.len);
    }
  }
  if (ext & kSeq) w.varint(zigzag(static_cast<std::int32_t>(seq - c.next_seq)));
  if (first & kA) {
    std::uint32_t d = ack - base::load_be32(ot + 8);
    w.varint(d == c.ack_delta ? 0 : d);
  }
  if (first & kW) w.varint(zigzag(static_cast<std::int16_t>(win - owin)));
  if (ext & kId) w.varint(id_delta);
  if (ext & kUrg) {
    w.u8(t[18]);
    w.u8(t[19]);
  }
  if (first & kV) w.varint(tsval - c.tsval);
  if (first & kR) {
    std::uint32_t d = tsecr - c.tsecr;
    w.varint(first & kV && d == tsval - c.tsval ? 0 : d);
  }
  for (int i = 0; i < (p.opts.sack == kNone ? 0 : p.opts.sack_blocks); ++i) {
    const std::uint8_t* block = t + 20 + p.opts.sack + 8 * i;
    std::uint32_t start = base::load_be32(block), end = base::load_be32(block + 4);
    w.varint(start - ack);
    w.varint(end - start);
  }
}

Error decode_tcp(std::uint8_t first, const Context& c, Reader& r, std::uint8_t* hdr, Parsed& p,
                 std::uint8_t& mode) {
  const std::uint8_t* o = c.hdr.data();
  const std::uint8_t* ot = o + c.ip_len;
  p = Parsed{c.version, c.proto, c.ip_len, c.l4_len, 0, c.opts};
  mode = c.mode;
  std::memcpy(hdr, o, std::size_t{c.ip_len} + c.l4_len);
  std::uint8_t* t = hdr + p.ip_len;

  std::uint8_t ext = first & kX ? r.u8() : 0;
  if (!r.ok) return reader_error(r);
  if ((first & kX && ext == 0) || ext & 0xc0 || (ext & kId && p.version != 4))
    return Error::bad_field;
  if (ext & kIpf) {
    if (Error e = read_ipf(r, hdr, p, mode); e != Error::none) return e;
  }
  std::uint8_t flags = ot[13] & ~kPsh;
  if (ext & kFlags) {
    flags = r.u8();
    if (!r.ok) return reader_error(r);
    if (flags & kPsh) return Error::bad_field;
  }
  t[13] = static_cast<std::uint8_t>(flags | (first & kP ? kPsh : 0));
  if (ext & kFlags && flags == (ot[13] & ~kPsh)) return Error::bad_field;
  if (ext & kOpts) {
    std::uint8_t code = r.u8();
    std::uint8_t tpl[40] = {};
    std::size_t len = 0;
    if (code >= kKnownFirst && code <= kKnownLast) {
      len = known_template(code - kKnownFirst, tpl);
    } else if (code <= 40 && code % 4 == 0) {
      len = code;
      for (std::size_t i = 0; i < len; ++i) tpl[i] = r.u8();
    } else {
      return r.ok ? Error::bad_field : reader_error(r);
    }
    if (!r.ok) return reader_error(r);
    p.opts = parse_options(tpl, len);
    std::uint8_t masked[40];
    mask_options(tpl, p.opts, masked);
    if (std::memcmp(masked, tpl, len) != 0) return Error::bad_field;  // dynamic fields not zero
    std::uint8_t old_tpl[40];
    mask_options(ot + 20, c.opts, old_tpl);
    if (p.opts == c.opts && std::memcmp(old_tpl, tpl, len) == 0) return Error::bad_field;
    std::memcpy(t + 20, tpl, len);
    p.l4_len = static_cast<std::uint8_t>(20 + len);
    t[12] = static_cast<std::uint8_t>((p.l4_len / 4) << 4 | (t[12] & 0x0f));
  }
  // Fields flagged as changed must change: the compressor sends nothing else, and garbage that
  // breaks this rule is caught.
  std::uint32_t seq = c.next_seq;
  if (ext & kSeq) {
    std::uint32_t z = r.varint();
    if (z == 0) return r.ok ? Error::bad_field : reader_error(r);
    seq += static_cast<std::uint32_t>(unzigzag(z));
  }
  base::store_be32(t + 4, seq);
  std::uint32_t ack = base::load_be32(ot + 8);
  if (first & kA) {
    // 0: the context's last step; that step itself would have been sent as 0.
    std::uint32_t d = r.varint();
    if (d != 0 && d == c.ack_delta) return Error::bad_field;
    if (d == 0) d = c.ack_delta;
    if (d == 0) return r.ok ? Error::bad_field : reader_error(r);
    ack += d;
  }
  base::store_be32(t + 8, ack);
  if (first & kW) {
    std::uint32_t z = r.varint(0xffff);
    if (z == 0) return r.ok ? Error::bad_field : reader_error(r);
    base::store_be16(t + 14, static_cast<std::uint16_t>(base::load_be16(ot + 14) + unzigzag(z)));
  }
  if (p.version == 4) {
    std::uint16_t delta = c.id_delta;
    if (ext & kId) {
      delta = static_cast<std::uint16_t>(r.varint(0xffff));
      if (r.ok && delta == c.id_delta) return Error::bad_field;
    }
    base::store_be16(hdr + 4, static_cast<std::uint16_t>(base::load_be16(o + 4) + delta));
  }
  if (ext & kUrg) {
    t[18] = r.u8();
    t[19] = r.u8();
    if (r.ok && base::load_be16(t + 18) == base::load_be16(ot + 18)) return Error::bad_field;
  }
  if ((first & (kV | kR)) && p.opts.ts == kNone) return Error::bad_field;
  if (p.opts.ts != kNone) {
    std::uint32_t tsval = c.tsval, tsecr = c.tsecr;
    std::uint32_t dval = first & kV ? r.varint() : 0;
    if (first & kV && dval == 0) return r.ok ? Error::bad_field : reader_error(r);
    tsval += dval;
    if (first & kR) {
      // 0: the same step as TSval's; that step itself would have been sent as 0.
      std::uint32_t d = r.varint();
      if (d != 0 && d == dval) return Error::bad_field;
      if (d == 0) d = dval;
      if (d == 0) return r.ok ? Error::bad_field : reader_error(r);
      tsecr += d;
    }
    base::store_be32(t + 20 + p.opts.ts, tsval);
    base::store_be32(t + 24 + p.opts.ts, tsecr);
  }
  for (int i = 0; i < (p.opts.sack == kNone ? 0 : p.opts.sack_blocks); ++i) {
    std::uint8_t* block = t + 20 + p.opts.sack + 8 * i;
    std::uint32_t start = ack + r.varint();
    std::uint32_t end = start + r.varint();
    base::store_be32(block, start);
    base::store_be32(block + 4, end);
  }
  return r.ok ? Error::none : reader_error(r);
}

}  // namespace codec::detail
