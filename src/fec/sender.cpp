#include "src/fec/sender.hpp"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fec {
namespace {

constexpr std::size_t kInitialSymbol = 2048;  // grows when a longer packet comes

}  // namespace

Sender::Sender(const crypto::Key& key, SenderOptions options) : key_(key), options_(options) {
  options_.max_data = std::clamp<std::size_t>(options_.max_data, 1, wire::kMaxData);
  next_seq_ = options_.first_seq ? *options_.first_seq : randombytes_random();
  symbols_.resize(options_.max_data);
  for (auto& s : symbols_) s.resize(kInitialSymbol);
  lengths_.resize(options_.max_data);
  parity_.resize(wire::kMaxParity);
  for (auto& p : parity_) p.resize(wire::parity_size(kInitialSymbol));
}

void Sender::set_redundancy(double r) {
  redundancy_ = r > 0 ? std::min(r, 0.5) : 0.0;
  use_table_ = false;
}

void Sender::set_parity_table(const ParityTable& m_for_n) {
  table_ = m_for_n;
  use_table_ = true;
  // Whether blocks are protected at all: any size with parity.
  redundancy_ = 0;
  for (std::size_t n = 1; n < table_.size(); ++n)
    redundancy_ = std::max(redundancy_, static_cast<double>(table_[n]) / static_cast<double>(n));
}

void Sender::add(std::span<const std::uint8_t> packet, std::uint8_t header_out[wire::kDataHeader],
                 double now, const Emit& emit) {
  std::uint32_t seq = next_seq_++;
  ++stats_.data;
  if (packet.size() > wire::kMaxPacket) {
    if (count_) close(emit);
    wire::encode_data_header(seq, false, header_out);
    return;
  }
  if (count_ == 0) {
    if (redundancy_ == 0) {
      wire::encode_data_header(seq, false, header_out);
      return;
    }
    first_ = seq;
    opened_ = now;
    block_redundancy_ = redundancy_;
    longest_ = 0;
  }
  std::vector<std::uint8_t>& symbol = symbols_[count_];
  std::size_t size = wire::kSymbolPrefix + packet.size();
  if (symbol.size() < size) symbol.resize(size);
  wire::encode_symbol_prefix(packet.size(), symbol.data());
  if (!packet.empty())
    std::memcpy(symbol.data() + wire::kSymbolPrefix, packet.data(), packet.size());
  lengths_[count_++] = size;
  longest_ = std::max(longest_, packet.size());
  wire::encode_data_header(seq, true, header_out);
  if (count_ == options_.max_data) close(emit);
}

void Sender::flush(double now, bool force, const Emit& emit) {
  if (count_ && (force || now - opened_ >= options_.max_block_age)) close(emit);
}

std::optional<double> Sender::next_deadline() const {
  if (count_) return opened_ + options_.max_block_age;
  return std::nullopt;
}

void Sender::close(const Emit& emit) {
  const std::size_t n = count_;
  // ceil(n * r), not fooled by a product a rounding error above an integer.
  auto m = use_table_ ? std::size_t{table_[n]}
                      : static_cast<std::size_t>(std::ceil(double(n) * block_redundancy_ - 1e-9));
  m = std::clamp<std::size_t>(m, 1, wire::kMaxParity);
  const std::size_t len = wire::kSymbolPrefix + longest_;

  std::array<const std::uint8_t*, wire::kMaxData> data;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t>& symbol = symbols_[i];
    if (symbol.size() < len) symbol.resize(len);
    std::memset(symbol.data() + lengths_[i], 0, len - lengths_[i]);
    data[i] = symbol.data();
  }
  std::array<std::uint8_t*, wire::kMaxParity> out;
  for (std::size_t p = 0; p < m; ++p) {
    if (parity_[p].size() < wire::parity_size(len)) parity_[p].resize(wire::parity_size(len));
    out[p] = parity_[p].data() + wire::kParityHeader;
  }
  codec_.encode({data.data(), n}, {out.data(), m}, len);
  count_ = 0;
  for (std::size_t p = 0; p < m; ++p) {
    wire::Parity header{first_,
                        static_cast<std::uint8_t>(n),
                        static_cast<std::uint8_t>(m),
                        static_cast<std::uint8_t>(p),
                        {out[p], len}};
    emit(wire::encode_parity(header, key_, parity_[p]));
  }
  stats_.parity += m;
  ++stats_.blocks;
}

}  // namespace fec
