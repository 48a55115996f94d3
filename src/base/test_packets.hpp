#pragma once
// Builders of well-formed IPv4/IPv6 packets for unit tests.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/base/bytes.hpp"

namespace base::test_packets {

inline std::vector<std::uint8_t> ipv4(const std::string& src, const std::string& dst,
                                      std::uint8_t protocol, std::uint16_t sport,
                                      std::uint16_t dport, std::size_t payload = 16) {
  std::size_t l4 = (protocol == IPPROTO_TCP) ? 20 : (protocol == IPPROTO_UDP ? 8 : 8);
  std::vector<std::uint8_t> p(20 + l4 + payload, 0);
  p[0] = 0x45;
  store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
  p[8] = 64;
  p[9] = protocol;
  inet_pton(AF_INET, src.c_str(), &p[12]);
  inet_pton(AF_INET, dst.c_str(), &p[16]);
  store_be16(&p[20], sport);
  store_be16(&p[22], dport);
  if (protocol == IPPROTO_TCP) p[32] = 0x50;
  for (std::size_t i = 0; i < payload; ++i) p[20 + l4 + i] = static_cast<std::uint8_t>(i * 7 + 1);
  return p;
}

inline std::vector<std::uint8_t> ipv6(const std::string& src, const std::string& dst,
                                      std::uint8_t protocol, std::uint16_t sport,
                                      std::uint16_t dport, std::size_t payload = 16) {
  std::size_t l4 = (protocol == IPPROTO_TCP) ? 20 : 8;
  std::vector<std::uint8_t> p(40 + l4 + payload, 0);
  p[0] = 0x60;
  std::size_t plen = l4 + payload;
  store_be16(&p[4], static_cast<std::uint16_t>(plen));
  p[6] = protocol;
  p[7] = 64;
  inet_pton(AF_INET6, src.c_str(), &p[8]);
  inet_pton(AF_INET6, dst.c_str(), &p[24]);
  store_be16(&p[40], sport);
  store_be16(&p[42], dport);
  for (std::size_t i = 0; i < payload; ++i) p[40 + l4 + i] = static_cast<std::uint8_t>(i * 3 + 5);
  return p;
}

}  // namespace base::test_packets
