#include "src/base/crc32c.hpp"

#include <doctest/doctest.h>
#include <usrsctp.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

std::vector<base::crc32c::Implementation> supported_implementations() {
  std::vector<base::crc32c::Implementation> out;
  for (auto implementation :
       {base::crc32c::Implementation::software, base::crc32c::Implementation::sse42,
        base::crc32c::Implementation::sse42_pclmul}) {
    if (base::crc32c::supported(implementation)) out.push_back(implementation);
  }
  return out;
}

// doctest prints a const char* as a pointer.
std::string label(base::crc32c::Implementation implementation) {
  return base::crc32c::name(implementation);
}

Bytes text(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

// A plausible SCTP packet: common header with checksum 0, then DATA / SACK-like chunks padded to
// 4 bytes, total length up to about 1500 bytes.
Bytes random_sctp_packet(std::mt19937_64& rng) {
  Bytes packet = random_bytes(rng, base::crc32c::kSctpCommonHeaderSize);
  std::memset(packet.data() + base::crc32c::kSctpChecksumOffset, 0, 4);
  const std::size_t chunks = rng() % 4;
  for (std::size_t c = 0; c < chunks && packet.size() < 1400; ++c) {
    const std::size_t value_length = rng() % 2 ? 12 + rng() % 1300 : rng() % 40;
    const std::size_t chunk_length = 4 + value_length;
    const std::uint8_t type = c == 0 && rng() % 2 ? 3 /* SACK */ : 0 /* DATA */;
    packet.push_back(type);
    packet.push_back(static_cast<std::uint8_t>(rng() & 0x0f));
    packet.push_back(static_cast<std::uint8_t>(chunk_length >> 8));
    packet.push_back(static_cast<std::uint8_t>(chunk_length));
    Bytes value = random_bytes(rng, value_length);
    packet.insert(packet.end(), value.begin(), value.end());
    while (packet.size() % 4 != 0) packet.push_back(0);
  }
  return packet;
}

// The checksum as usrsctp would write it into the header: usrsctp_crc32c() over the packet with
// the field zeroed, stored in host order (sctp_output: sh->checksum = sctp_calculate_cksum(...)).
std::array<std::uint8_t, 4> usrsctp_field(Bytes packet) {
  std::memset(packet.data() + base::crc32c::kSctpChecksumOffset, 0, 4);
  const std::uint32_t value = usrsctp_crc32c(packet.data(), packet.size());
  std::array<std::uint8_t, 4> field;
  std::memcpy(field.data(), &value, 4);
  return field;
}

std::array<std::uint8_t, 4> field_of(const Bytes& packet) {
  std::array<std::uint8_t, 4> field;
  std::memcpy(field.data(), packet.data() + base::crc32c::kSctpChecksumOffset, 4);
  return field;
}

}  // namespace

TEST_CASE("crc32c: known vectors (RFC 3720 B.4 and the check value)") {
  Bytes zeros(32, 0x00);
  Bytes ones(32, 0xff);
  Bytes ascending(32);
  std::iota(ascending.begin(), ascending.end(), std::uint8_t{0});
  Bytes descending(ascending.rbegin(), ascending.rend());
  // RFC 3720 B.4: an iSCSI Read (10) command PDU; the CRC bytes on the wire are 56 3a 96 d9.
  const Bytes iscsi_read = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                            0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                            0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                            0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  struct Vector {
    Bytes data;
    std::uint32_t crc;
  };
  const std::vector<Vector> vectors = {
      {{}, 0x00000000},         {text("a"), 0xC1D04330},  {text("123456789"), 0xE3069283},
      {zeros, 0x8A9136AA},      {ones, 0x62A8AB43},       {ascending, 0x46DD794E},
      {descending, 0x113FDB5C}, {iscsi_read, 0xD9963A56},
  };
  for (auto implementation : supported_implementations()) {
    const std::string name = label(implementation);
    CAPTURE(name);
    for (const auto& v : vectors) {
      CAPTURE(v.data.size());
      CHECK(base::crc32c::compute(implementation, v.data) == v.crc);
    }
  }
  for (const auto& v : vectors) {
    CHECK(base::crc32c::compute(v.data) == v.crc);
    Bytes copy = v.data;  // usrsctp_crc32c takes a non-const pointer
    if constexpr (std::endian::native == std::endian::little) {
      CHECK(usrsctp_crc32c(copy.data(), copy.size()) == v.crc);
    }
  }
}

TEST_CASE("crc32c: the build picks the best implementation the CPU has") {
  MESSAGE("crc32c implementation: " << label(base::crc32c::selected()));
  CHECK(base::crc32c::supported(base::crc32c::Implementation::software));
  CHECK(base::crc32c::supported(base::crc32c::selected()));
  CHECK(base::crc32c::hardware() ==
        (base::crc32c::selected() != base::crc32c::Implementation::software));
  if (base::crc32c::supported(base::crc32c::Implementation::sse42_pclmul)) {
    CHECK(base::crc32c::selected() == base::crc32c::Implementation::sse42_pclmul);
  } else if (base::crc32c::supported(base::crc32c::Implementation::sse42)) {
    CHECK(base::crc32c::selected() == base::crc32c::Implementation::sse42);
  }
#if !defined(__x86_64__)
  CHECK_FALSE(base::crc32c::hardware());
#endif
}

TEST_CASE("crc32c: all implementations agree on every length and alignment") {
  std::mt19937_64 rng(20240611);
  const Bytes pool = random_bytes(rng, 80000);
  const auto implementations = supported_implementations();
  auto check_all = [&](std::size_t offset, std::size_t length) {
    const std::span<const std::uint8_t> data(pool.data() + offset, length);
    const std::uint32_t reference =
        base::crc32c::compute(base::crc32c::Implementation::software, data);
    for (auto implementation : implementations) {
      if (base::crc32c::compute(implementation, data) != reference) {
        FAIL_CHECK(label(implementation) << " differs: offset " << offset << " length " << length);
      }
    }
    if (base::crc32c::compute(data) != reference)
      FAIL_CHECK("compute() differs, length " << length);
  };
  for (std::size_t length = 0; length <= 300; ++length) {
    for (std::size_t offset = 0; offset < 16; ++offset) check_all(offset, length);
  }
  // Around the 3-way block boundaries (4..256 words per lane), packets, and multi-block buffers.
  for (std::size_t length : {95u, 96u, 97u, 119u, 120u, 1452u, 1500u, 6143u, 6144u, 6145u, 6167u,
                             9000u, 12288u, 12311u, 65535u, 79984u}) {
    for (std::size_t offset = 0; offset < 16; ++offset) check_all(offset, length);
  }
  for (int i = 0; i < 300; ++i) check_all(rng() % 16, rng() % (pool.size() - 16));
}

TEST_CASE("crc32c: extend continues a CRC across any split") {
  std::mt19937_64 rng(7);
  const Bytes data = random_bytes(rng, 3000);
  const std::span<const std::uint8_t> all(data);
  for (auto implementation : supported_implementations()) {
    const std::string name = label(implementation);
    CAPTURE(name);
    const std::uint32_t whole = base::crc32c::compute(implementation, all);
    for (int i = 0; i < 200; ++i) {
      const std::size_t split = rng() % (data.size() + 1);
      const std::uint32_t head = base::crc32c::compute(implementation, all.first(split));
      CHECK(base::crc32c::extend(implementation, head, all.subspan(split)) == whole);
      CHECK(base::crc32c::extend(head, all.subspan(split)) == whole);
    }
    CHECK(base::crc32c::extend(implementation, 0, all) == whole);
  }
}

TEST_CASE("crc32c: checksum field is least significant byte first, exactly as usrsctp writes it") {
  // A minimal hand-made packet: ports 5000 -> 5001, verification tag 0x01020304, no chunks.
  Bytes packet = {0x13, 0x88, 0x13, 0x89, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc, 0xdd};
  base::crc32c::set_sctp_checksum(packet);
  Bytes zeroed = packet;
  std::memset(zeroed.data() + 8, 0, 4);
  const std::uint32_t crc = base::crc32c::compute(zeroed);
  CHECK(packet[8] == (crc & 0xff));
  CHECK(packet[9] == ((crc >> 8) & 0xff));
  CHECK(packet[10] == ((crc >> 16) & 0xff));
  CHECK(packet[11] == crc >> 24);
  CHECK(field_of(packet) == usrsctp_field(packet));
  // The other header fields are untouched.
  CHECK(std::equal(packet.begin(), packet.begin() + 8, zeroed.begin()));
}

TEST_CASE("crc32c: set_sctp_checksum agrees with usrsctp_crc32c on random SCTP packets") {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    Bytes packet = random_sctp_packet(rng);
    // Start from garbage in the field: set must not depend on what was there.
    for (std::size_t k = 0; k < 4; ++k) {
      packet[base::crc32c::kSctpChecksumOffset + k] = static_cast<std::uint8_t>(rng());
    }
    const Bytes before = packet;
    base::crc32c::set_sctp_checksum(packet);
    CAPTURE(packet.size());
    REQUIRE(field_of(packet) == usrsctp_field(packet));
    CHECK(std::equal(packet.begin(), packet.begin() + 8, before.begin()));
    CHECK(std::equal(packet.begin() + 12, packet.end(), before.begin() + 12));
    CHECK(base::crc32c::verify_sctp_checksum(packet));
    // A packet checksummed by usrsctp's own routine verifies.
    Bytes theirs = before;
    const auto field = usrsctp_field(theirs);
    std::memcpy(theirs.data() + base::crc32c::kSctpChecksumOffset, field.data(), 4);
    CHECK(base::crc32c::verify_sctp_checksum(theirs));
  }
}

TEST_CASE("crc32c: set/verify round trip, short packets") {
  std::mt19937_64 rng(3);
  for (std::size_t length = 0; length < base::crc32c::kSctpCommonHeaderSize; ++length) {
    Bytes packet = random_bytes(rng, length);
    const Bytes before = packet;
    base::crc32c::set_sctp_checksum(packet);
    CHECK(packet == before);
    CHECK_FALSE(base::crc32c::verify_sctp_checksum(packet));
  }
  for (std::size_t length = base::crc32c::kSctpCommonHeaderSize; length <= 2000; ++length) {
    Bytes packet = random_bytes(rng, length);
    base::crc32c::set_sctp_checksum(packet);
    const Bytes sealed = packet;
    REQUIRE(base::crc32c::verify_sctp_checksum(packet));
    CHECK(packet == sealed);  // verify does not modify
    // Setting again is idempotent (the old value of the field does not matter).
    base::crc32c::set_sctp_checksum(packet);
    CHECK(packet == sealed);
  }
}

TEST_CASE("crc32c: verify detects every single-bit flip") {
  std::mt19937_64 rng(11);
  for (std::size_t length : {12u, 13u, 16u, 64u, 100u, 333u, 1452u}) {
    Bytes packet = random_bytes(rng, length);
    base::crc32c::set_sctp_checksum(packet);
    REQUIRE(base::crc32c::verify_sctp_checksum(packet));
    std::size_t missed = 0;
    for (std::size_t bit = 0; bit < length * 8; ++bit) {
      packet[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      if (base::crc32c::verify_sctp_checksum(packet)) ++missed;
      packet[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
    CAPTURE(length);
    CHECK(missed == 0);
    CHECK(base::crc32c::verify_sctp_checksum(packet));
  }
  // A zeroed checksum field (what usrsctp leaves with offload enabled) is rejected.
  Bytes packet = random_bytes(rng, 200);
  base::crc32c::set_sctp_checksum(packet);
  if (field_of(packet) != std::array<std::uint8_t, 4>{}) {
    std::memset(packet.data() + base::crc32c::kSctpChecksumOffset, 0, 4);
    CHECK_FALSE(base::crc32c::verify_sctp_checksum(packet));
  }
}
