#include "tun/fake_tun.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(const tun::PacketBuf& buf) {
  return Bytes(buf.data().begin(), buf.data().end());
}

}  // namespace

TEST_CASE("FakeTun: identity and an fd nobody can poll") {
  tun::FakeTun dev("tunfake", 1380);
  CHECK(dev.name() == "tunfake");
  CHECK(dev.mtu() == 1380);
  CHECK(dev.fd() == -1);
  dev.set_mtu(1280);
  CHECK(dev.mtu() == 1280);
}

TEST_CASE(
    "FakeTun: injected packets come out of read() in order, written ones out of take_written()") {
  tun::FakeTun dev;
  const Bytes first{0x45, 0x00, 0x00, 0x14}, second{0x60, 0x01, 0x02};
  dev.inject(first);
  dev.inject(second);

  std::array<tun::PacketBuf, 4> bufs;
  REQUIRE(dev.read(bufs) == 2);
  CHECK(bytes_of(bufs[0]) == first);
  CHECK(bytes_of(bufs[1]) == second);
  CHECK(dev.read(bufs) == 0);
  CHECK(dev.stats().read_packets == 2);
  CHECK(dev.stats().read_bytes == first.size() + second.size());

  // Echo them back: write() takes pointers, as the gateway passes packets it does not own.
  const std::array<const tun::PacketBuf*, 2> out{&bufs[0], &bufs[1]};
  CHECK(dev.write(out) == 2);
  CHECK(dev.take_written() == std::vector<Bytes>{first, second});
  CHECK(dev.take_written().empty());
  CHECK(dev.stats().written_packets == 2);
  CHECK(dev.stats().written_bytes == first.size() + second.size());
  CHECK(dev.stats().write_errors == 0);
}

TEST_CASE("FakeTun: read() never returns more packets than bufs hold") {
  tun::FakeTun dev;
  for (std::uint8_t i = 0; i < 5; i++) dev.inject(Bytes{i});

  std::array<tun::PacketBuf, 2> bufs;
  CHECK(dev.read(bufs) == 2);
  CHECK(bufs[1].data()[0] == 1);
  CHECK(dev.pending() == 3);
  CHECK(dev.read(bufs) == 2);
  CHECK(dev.read(bufs) == 1);
  CHECK(bufs[0].data()[0] == 4);
  CHECK(dev.read(bufs) == 0);
  CHECK(dev.read(std::span<tun::PacketBuf>{}) == 0);
}

TEST_CASE("FakeTun: a packet read leaves the full headroom for a tunnel header") {
  tun::FakeTun dev;
  dev.inject(Bytes{1, 2, 3});
  std::array<tun::PacketBuf, 1> bufs;
  bufs[0].assign(Bytes(100, 0xee));
  bufs[0].push_front(40);  // leftovers from the buffer's previous use must not leak through

  REQUIRE(dev.read(bufs) == 1);
  CHECK(bufs[0].headroom() == tun::PacketBuf::kHeadroom);
  CHECK(bytes_of(bufs[0]) == Bytes{1, 2, 3});
  const auto header = bufs[0].push_front(tun::PacketBuf::kHeadroom);
  header[0] = 0xaa;
  CHECK(bufs[0].size() == tun::PacketBuf::kHeadroom + 3);
  CHECK(bufs[0].data()[tun::PacketBuf::kHeadroom] == 1);
}

TEST_CASE("FakeTun: refused and empty writes are counted and skipped, the rest go through") {
  tun::FakeTun dev;
  tun::PacketBuf a, empty, b, c;
  a.assign(Bytes{0xa});
  b.assign(Bytes{0xb});
  c.assign(Bytes{0xc});
  dev.refuse_next_writes(1);

  const std::array<const tun::PacketBuf*, 4> out{&a, &empty, &b, &c};
  CHECK(dev.write(out) == 2);
  CHECK(dev.take_written() == std::vector<Bytes>{{0xb}, {0xc}});
  CHECK(dev.stats().write_errors == 2);
  CHECK(dev.stats().written_packets == 2);
}

TEST_CASE("FakeTun: inject() refuses what a TUN could never deliver") {
  tun::FakeTun dev;
  CHECK_THROWS_AS(dev.inject(Bytes{}), std::length_error);
  CHECK_THROWS_AS(dev.inject(Bytes(tun::PacketBuf::kCapacity, 0)), std::length_error);
  dev.inject(Bytes(tun::PacketBuf::kCapacity - tun::PacketBuf::kHeadroom, 0x45));
  CHECK(dev.pending() == 1);
}
