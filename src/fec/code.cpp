#include "src/fec/code.hpp"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <cstring>

namespace fec {

Codec::Codec() : tables_(kMaxN * kMaxM * 32), syndromes_(kMaxM * 2048) {}

void Codec::encode(std::span<const std::uint8_t* const> data, std::span<std::uint8_t* const> parity,
                   std::size_t len) {
  const int n = static_cast<int>(data.size()), m = static_cast<int>(parity.size());
  std::vector<std::uint8_t>& tables = encode_tables_[n - 1];
  if (tables.empty()) {
    // Tables for all kMaxM parity rows: ec_init_tables lays them out row by row, so the first
    // m rows' tables are those of (n, m).
    tables.resize(std::size_t(n) * kMaxM * 32);
    gf_gen_cauchy1_matrix(matrix_.data(), n + int{kMaxM}, n);
    ec_init_tables(n, int{kMaxM}, matrix_.data() + n * n, tables.data());
  }
  std::array<unsigned char*, kMaxN> in;
  std::array<unsigned char*, kMaxM> outs;
  for (int i = 0; i < n; ++i) in[i] = const_cast<unsigned char*>(data[i]);  // ISA-L only reads
  for (int p = 0; p < m; ++p) outs[p] = parity[p];
  ec_encode_data(static_cast<int>(len), n, m, tables.data(), in.data(), outs.data());
}

bool Codec::decode(std::span<const std::uint8_t* const> data,
                   std::span<const std::uint8_t* const> parity, std::span<std::uint8_t* const> out,
                   std::size_t len) {
  // With E the erased data and P as many present parity, C the parity rows of the generator:
  //   parity_p = sum over all j of C[p][j] data_j, so (adding is XOR)
  //   s_p = parity_p + sum over present j of C[p][j] data_j = sum over j in E of C[p][j] data_j
  // and data_E = inverse(C[P][E]) s_P. C[P][E] is a square submatrix of a Cauchy matrix, so it is
  // invertible, and it is at most kMaxM x kMaxM (where inverting the n x n matrix of the n
  // symbols used would cost n^3).
  const int n = static_cast<int>(data.size()), m = static_cast<int>(parity.size());
  std::array<int, kMaxM> erased;
  int e = 0;
  for (int i = 0; i < n; ++i)
    if (!data[i]) {
      if (e == m) return false;
      erased[e++] = i;
    }
  // The sources of the syndromes: the present data, then the first e present parity.
  std::array<unsigned char*, kMaxN> sources;
  std::array<int, kMaxM> chosen;
  int have = 0;
  for (int i = 0; i < n; ++i)
    if (data[i]) sources[have++] = const_cast<unsigned char*>(data[i]);  // ISA-L only reads
  int c = 0;
  for (int p = 0; p < m && c < e; ++p)
    if (parity[p]) {
      sources[have++] = const_cast<unsigned char*>(parity[p]);
      chosen[c++] = p;
    }
  if (c < e) return false;
  std::array<unsigned char*, kMaxM> targets;
  std::array<int, kMaxM> target_row;  // which of the erased each target is
  int want = 0;
  for (int r = 0; r < e; ++r)
    if (out[erased[r]]) {
      targets[want] = out[erased[r]];
      target_row[want++] = r;
    }
  if (want == 0) return true;

  gf_gen_cauchy1_matrix(matrix_.data(), n + m, n);
  auto coefficient = [&](int p, int j) { return matrix_[std::size_t(n + p) * n + j]; };
  // C[P][E], inverted.
  for (int r = 0; r < e; ++r)
    for (int col = 0; col < e; ++col) square_[r * e + col] = coefficient(chosen[r], erased[col]);
  if (gf_invert_matrix(square_.data(), inverse_.data(), e) < 0) return false;
  // The syndromes s_P: row r has C[chosen r][j] for the present data j, 1 for its own parity.
  std::fill_n(rows_.begin(), std::size_t(e) * n, 0);
  for (int r = 0; r < e; ++r) {
    unsigned char* row = rows_.data() + r * n;
    int col = 0;
    for (int j = 0; j < n; ++j)
      if (data[j]) row[col++] = coefficient(chosen[r], j);
    row[col + r] = 1;
  }
  if (syndromes_.size() < std::size_t(e) * len) syndromes_.resize(std::size_t(e) * len);
  std::array<unsigned char*, kMaxM> syndrome;
  for (int r = 0; r < e; ++r) syndrome[r] = syndromes_.data() + std::size_t(r) * len;
  ec_init_tables(n, e, rows_.data(), tables_.data());
  ec_encode_data(static_cast<int>(len), n, e, tables_.data(), sources.data(), syndrome.data());
  // data_E = inverse s_P, the wanted rows only.
  for (int t = 0; t < want; ++t)
    std::memcpy(rows_.data() + t * e, inverse_.data() + target_row[t] * e, std::size_t(e));
  ec_init_tables(e, want, rows_.data(), tables_.data());
  ec_encode_data(static_cast<int>(len), e, want, tables_.data(), syndrome.data(), targets.data());
  return true;
}

}  // namespace fec
