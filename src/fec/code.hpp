#pragma once
// Systematic Reed–Solomon erasure code over GF(2^8), all arithmetic by Intel ISA-L: a block of n
// data symbols (1 <= n <= wire::kMaxData) gets m parity symbols (1 <= m <= wire::kMaxParity);
// parity p is the product of row n + p of ISA-L's Cauchy matrix for (n + m, n)
// (gf_gen_cauchy1_matrix) with the data, so any n of the n + m symbols give back the data.
// Parity p depends on n and p only, not on m.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "src/fec/wire.hpp"

namespace fec {

class Codec {
 public:
  Codec();

  // Writes parity symbol p of the n = data.size() data symbols into parity[p], for
  // p < m = parity.size(); every symbol is len bytes. Requires 1 <= n <= kMaxData and
  // 1 <= m <= kMaxParity. The first use of each n builds and keeps its tables (allocates once).
  void encode(std::span<const std::uint8_t* const> data, std::span<std::uint8_t* const> parity,
              std::size_t len);

  // data: the n symbols of a block, nullptr where erased; parity: its m parity symbols, nullptr
  // where missing (sizes as for encode; every symbol len bytes). Rebuilds every erased data
  // symbol i with out[i] != nullptr into out[i] (out.size() == n). False (nothing written) when
  // fewer than n of the n + m symbols are present. Allocates only to decode symbols longer than
  // any before (beyond 2048 bytes).
  bool decode(std::span<const std::uint8_t* const> data,
              std::span<const std::uint8_t* const> parity, std::span<std::uint8_t* const> out,
              std::size_t len);

 private:
  static constexpr std::size_t kMaxN = wire::kMaxData, kMaxM = wire::kMaxParity;

  std::array<std::vector<std::uint8_t>, kMaxN> encode_tables_;  // [n - 1]: kMaxM rows
  // Decoding scratch: tables for up to kMaxN x kMaxM coefficients, the syndromes (grown to the
  // longest symbols decoded), matrices.
  std::vector<std::uint8_t> tables_, syndromes_;
  std::array<std::uint8_t, (kMaxN + kMaxM) * kMaxN> matrix_{};
  std::array<std::uint8_t, kMaxM * kMaxM> square_{}, inverse_{};
  std::array<std::uint8_t, kMaxM * kMaxN> rows_{};
};

}  // namespace fec
