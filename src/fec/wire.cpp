#include "src/fec/wire.hpp"

#include <sodium.h>

#include <cstring>

#include "src/base/bytes.hpp"

namespace fec::wire {
namespace {

void put_start(std::uint8_t* p, Kind kind) {
  p[0] = 0;
  p[1] = 0;
  p[2] = kMarker;
  p[3] = static_cast<std::uint8_t>(kind);
}

void mac(std::span<const std::uint8_t> in, const crypto::Key& key, std::uint8_t out[kMacSize]) {
  crypto_generichash(out, kMacSize, in.data(), in.size(), key.data(), key.size());
}

}  // namespace

std::optional<Kind> kind_of(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < 4 || datagram[0] != 0 || datagram[1] != 0 || datagram[2] != kMarker)
    return std::nullopt;
  if (datagram[3] < 1 || datagram[3] > 4) return std::nullopt;
  return static_cast<Kind>(datagram[3]);
}

void encode_data_header(std::uint32_t seq, bool is_protected, std::uint8_t out[kDataHeader]) {
  put_start(out, is_protected ? Kind::data : Kind::data_unprotected);
  base::store_be32(out + 4, seq);
}

std::optional<Data> parse_data(std::span<const std::uint8_t> datagram) {
  auto kind = kind_of(datagram);
  if (!kind || (*kind != Kind::data && *kind != Kind::data_unprotected)) return std::nullopt;
  if (datagram.size() < kDataHeader || datagram.size() - kDataHeader > kMaxPacket)
    return std::nullopt;
  return Data{base::load_be32(datagram.data() + 4), *kind == Kind::data,
              datagram.subspan(kDataHeader)};
}

std::span<const std::uint8_t> encode_parity(const Parity& p, const crypto::Key& key,
                                            std::span<std::uint8_t> out) {
  std::size_t len = p.symbol.size(), size = parity_size(len);
  std::uint8_t* o = out.data();
  put_start(o, Kind::parity);
  base::store_be32(o + 4, p.first);
  o[8] = p.k;
  o[9] = p.m;
  o[10] = p.index;
  o[11] = 0;
  base::store_be16(o + 12, static_cast<std::uint16_t>(len));
  if (len && p.symbol.data() != o + kParityHeader)
    std::memmove(o + kParityHeader, p.symbol.data(), len);
  mac(out.first(size - kMacSize), key, o + size - kMacSize);
  return out.first(size);
}

std::optional<Parity> parse_parity(std::span<const std::uint8_t> datagram) {
  if (kind_of(datagram) != Kind::parity || datagram.size() < parity_size(kSymbolPrefix))
    return std::nullopt;
  const std::uint8_t* p = datagram.data();
  Parity out;
  out.first = base::load_be32(p + 4);
  out.k = p[8];
  out.m = p[9];
  out.index = p[10];
  std::size_t len = base::load_be16(p + 12);
  if (out.k < 1 || out.k > kMaxData || out.m < 1 || out.m > kMaxParity || out.index >= out.m ||
      p[11] != 0 || len != datagram.size() - kParityHeader - kMacSize)
    return std::nullopt;
  out.symbol = datagram.subspan(kParityHeader, len);
  return out;
}

std::array<std::uint8_t, kReportSize> encode_report(const Report& r, const crypto::Key& key) {
  std::array<std::uint8_t, kReportSize> out{};
  std::uint8_t* o = out.data();
  put_start(o, Kind::report);
  base::store_be32(o + 4, r.highest_seq);
  base::store_be32(o + 8, r.received);
  base::store_be32(o + 12, r.lost);
  base::store_be32(o + 16, r.rebuilt);
  base::store_be32(o + 20, r.unrecovered);
  mac(std::span(out).first(kReportSize - kMacSize), key, o + kReportSize - kMacSize);
  return out;
}

std::optional<Report> parse_report(std::span<const std::uint8_t> datagram) {
  if (datagram.size() != kReportSize || kind_of(datagram) != Kind::report) return std::nullopt;
  const std::uint8_t* p = datagram.data();
  if (base::load_be32(p + 24) != 0) return std::nullopt;
  return Report{base::load_be32(p + 4), base::load_be32(p + 8), base::load_be32(p + 12),
                base::load_be32(p + 16), base::load_be32(p + 20)};
}

std::optional<Report> parse_report(std::span<const std::uint8_t> datagram, const crypto::Key& key) {
  auto report = parse_report(datagram);
  if (!report || !verify(datagram, key)) return std::nullopt;
  return report;
}

bool verify(std::span<const std::uint8_t> datagram, const crypto::Key& key) {
  if (datagram.size() < 4 + kMacSize) return false;
  std::uint8_t expected[kMacSize];
  std::size_t body = datagram.size() - kMacSize;
  mac(datagram.first(body), key, expected);
  return sodium_memcmp(expected, datagram.data() + body, kMacSize) == 0;
}

void encode_symbol_prefix(std::size_t len, std::uint8_t out[kSymbolPrefix]) {
  base::store_be16(out, static_cast<std::uint16_t>(len));
}

std::optional<std::span<const std::uint8_t>> symbol_packet(std::span<const std::uint8_t> symbol) {
  if (symbol.size() < kSymbolPrefix) return std::nullopt;
  std::size_t len = base::load_be16(symbol.data());
  if (len > symbol.size() - kSymbolPrefix) return std::nullopt;
  return symbol.subspan(kSymbolPrefix, len);
}

}  // namespace fec::wire
