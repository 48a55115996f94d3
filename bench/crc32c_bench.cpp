// Benchmark: CRC32c of one SCTP packet, usrsctp's own routine against ours.
//
// 64 random packets of the given size (default 1452 bytes: a full SCTP packet in a 1500-byte UDP
// path) are checksummed round-robin, so the data sits in L1/L2 as it does on the real path right
// after the packet was built or received. Each contender runs for about 0.1 s, five times
// interleaved; the best run is reported as ns per packet. Every result is cross-checked against
// usrsctp_crc32c() and folded into a printed checksum so the work cannot be optimised away.
//
// Usage: crc32c_bench [packet size in bytes, default 1452] [seconds per run, default 0.1]

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <usrsctp.h>

#include "src/base/crc32c.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kPackets = 64;
constexpr int kRounds = 5;

struct Contender {
  std::string name;
  std::function<std::uint32_t(std::vector<std::uint8_t>&)> run;  // returns something to fold
  double best_ns = 1e300;
};

// One timed run: as many whole passes over the packets as fit in `seconds`.
double time_run(Contender& contender, std::vector<std::vector<std::uint8_t>>& packets,
                double seconds, std::uint32_t& sink) {
  std::uint64_t done = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  Clock::time_point now;
  do {
    for (auto& packet : packets) sink ^= contender.run(packet);
    done += packets.size();
    now = Clock::now();
  } while (now < deadline);
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(done);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t size = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1452;
  const double seconds = argc > 2 ? std::strtod(argv[2], nullptr) : 0.1;
  if (size < base::crc32c::kSctpCommonHeaderSize) {
    std::fprintf(stderr, "packet size must be at least %zu\n", base::crc32c::kSctpCommonHeaderSize);
    return 2;
  }

  std::mt19937_64 rng(1);
  std::vector<std::vector<std::uint8_t>> packets(kPackets, std::vector<std::uint8_t>(size));
  for (auto& packet : packets) {
    for (auto& b : packet) b = static_cast<std::uint8_t>(rng());
    std::memset(packet.data() + base::crc32c::kSctpChecksumOffset, 0, 4);
  }

  // Cross-check every implementation against usrsctp before timing anything.
  for (auto& packet : packets) {
    std::uint32_t reference = usrsctp_crc32c(packet.data(), packet.size());
    if constexpr (std::endian::native == std::endian::big) reference = __builtin_bswap32(reference);
    for (auto implementation :
         {base::crc32c::Implementation::software, base::crc32c::Implementation::sse42,
          base::crc32c::Implementation::sse42_pclmul}) {
      if (base::crc32c::supported(implementation) &&
          base::crc32c::compute(implementation, packet) != reference) {
        std::fprintf(stderr, "MISMATCH: %s disagrees with usrsctp_crc32c\n",
                     base::crc32c::name(implementation));
        return 1;
      }
    }
  }

  std::vector<Contender> contenders;
  contenders.push_back({"usrsctp_crc32c()", [](std::vector<std::uint8_t>& p) {
                          return usrsctp_crc32c(p.data(), p.size());
                        }});
  for (auto implementation :
       {base::crc32c::Implementation::software, base::crc32c::Implementation::sse42,
        base::crc32c::Implementation::sse42_pclmul}) {
    if (!base::crc32c::supported(implementation)) continue;
    contenders.push_back({std::string("crc32c ") + base::crc32c::name(implementation),
                          [implementation](std::vector<std::uint8_t>& p) {
                            return base::crc32c::compute(implementation, p);
                          }});
  }
  // What the transport will actually call (selected implementation, header handling included).
  contenders.push_back({"set_sctp_checksum()", [](std::vector<std::uint8_t>& p) {
                          base::crc32c::set_sctp_checksum(p);
                          std::uint32_t field;
                          std::memcpy(&field, p.data() + base::crc32c::kSctpChecksumOffset, 4);
                          return field;
                        }});
  contenders.push_back({"verify_sctp_checksum()", [](std::vector<std::uint8_t>& p) {
                          return static_cast<std::uint32_t>(base::crc32c::verify_sctp_checksum(p));
                        }});

  std::uint32_t sink = 0;
  for (auto& contender : contenders) time_run(contender, packets, 0.02, sink);  // warm-up
  for (int round = 0; round < kRounds; ++round) {
    for (auto& contender : contenders) {
      contender.best_ns = std::min(contender.best_ns, time_run(contender, packets, seconds, sink));
    }
  }
  // The packets now carry checksums set by set_sctp_checksum(): all must verify.
  for (const auto& packet : packets) {
    if (!base::crc32c::verify_sctp_checksum(packet)) {
      std::fprintf(stderr, "MISMATCH: verify_sctp_checksum() rejects a packet it sealed\n");
      return 1;
    }
  }

  std::printf("CRC32c of a %zu-byte SCTP packet (%zu packets round-robin, best of %d x %.2f s)\n",
              size, kPackets, kRounds, seconds);
  std::printf("selected implementation: %s\n\n", base::crc32c::name(base::crc32c::selected()));
  const double baseline = contenders.front().best_ns;
  std::printf("%-36s %12s %10s %14s\n", "", "ns/packet", "GB/s", "vs usrsctp");
  for (const auto& c : contenders) {
    std::printf("%-36s %12.1f %10.2f %13.2fx\n", c.name.c_str(), c.best_ns,
                static_cast<double>(size) / c.best_ns, baseline / c.best_ns);
  }
  std::printf("\n(checksum %08x)\n", static_cast<unsigned>(sink));
  return 0;
}
