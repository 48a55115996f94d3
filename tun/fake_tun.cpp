#include "tun/fake_tun.hpp"

#include <stdexcept>
#include <utility>

namespace tun {

FakeTun::FakeTun(std::string name, int mtu) : name_(std::move(name)), mtu_(mtu) {}

void FakeTun::inject(std::span<const std::uint8_t> packet) {
  if (packet.empty() || packet.size() > PacketBuf::kCapacity - PacketBuf::kHeadroom) {
    throw std::length_error("FakeTun " + name_ + ": cannot inject a packet of " +
                            std::to_string(packet.size()) + " bytes");
  }
  inbound_.emplace_back(packet.begin(), packet.end());
}

std::vector<std::vector<std::uint8_t>> FakeTun::take_written() {
  return std::exchange(written_, {});
}

std::size_t FakeTun::read(std::span<PacketBuf> bufs) {
  std::size_t n = 0;
  while (n < bufs.size() && !inbound_.empty()) {
    const std::vector<std::uint8_t>& packet = inbound_.front();
    bufs[n].assign(packet);  // fits: checked by inject()
    stats_.read_packets++;
    stats_.read_bytes += packet.size();
    inbound_.pop_front();
    n++;
  }
  return n;
}

std::size_t FakeTun::write(std::span<const PacketBuf* const> packets) {
  std::size_t accepted = 0;
  for (const PacketBuf* packet : packets) {
    if (packet->empty()) {
      stats_.write_errors++;
      continue;
    }
    if (refuse_writes_ > 0) {
      refuse_writes_--;
      stats_.write_errors++;
      continue;
    }
    const auto bytes = packet->data();
    written_.emplace_back(bytes.begin(), bytes.end());
    stats_.written_packets++;
    stats_.written_bytes += bytes.size();
    accepted++;
  }
  return accepted;
}

}  // namespace tun
