#include "src/gateway/wire.hpp"

#include <doctest/doctest.h>

TEST_CASE("wire: HELLO round trip with extensions") {
  gateway::wire::Hello hello;
  hello.capabilities = 0xa5a5'0001;
  hello.instance = 0xdeadbeef;
  hello.extensions.push_back({7, {1, 2, 3}});
  hello.extensions.push_back({9, {}});
  std::vector<std::uint8_t> bytes = gateway::wire::encode_hello(hello);
  CHECK(bytes.size() == gateway::wire::kHelloFixedSize + 5 + 2);
  CHECK(bytes[0] == static_cast<std::uint8_t>(gateway::wire::Type::hello));

  gateway::wire::Message message;
  REQUIRE(gateway::wire::decode(bytes, message) == gateway::wire::DecodeError::none);
  CHECK(message.type == gateway::wire::Type::hello);

  gateway::wire::Hello back;
  REQUIRE(gateway::wire::decode_hello(bytes, back) == gateway::wire::DecodeError::none);
  CHECK(back.version == gateway::wire::kVersion);
  CHECK(back.capabilities == hello.capabilities);
  CHECK(back.instance == hello.instance);
  REQUIRE(back.extensions.size() == 2);
  CHECK(back.extensions[0].type == 7);
  CHECK(back.extensions[0].value == std::vector<std::uint8_t>{1, 2, 3});
  CHECK(back.extensions[1].value.empty());
}

TEST_CASE("wire: malformed HELLOs are refused") {
  std::vector<std::uint8_t> bytes = gateway::wire::encode_hello(gateway::wire::Hello{});
  gateway::wire::Hello out;
  CHECK(gateway::wire::decode_hello({}, out) == gateway::wire::DecodeError::empty);
  CHECK(gateway::wire::decode_hello(std::span(bytes).first(gateway::wire::kHelloFixedSize - 1), out) ==
        gateway::wire::DecodeError::truncated);
  auto bad_magic = bytes;
  bad_magic[4] ^= 0xff;
  CHECK(gateway::wire::decode_hello(bad_magic, out) == gateway::wire::DecodeError::bad_magic);
  auto bad_ext = bytes;
  bad_ext.insert(bad_ext.end(), {1, 10, 0});  // claims 10 bytes, has 1
  CHECK(gateway::wire::decode_hello(bad_ext, out) == gateway::wire::DecodeError::bad_extension);
  auto dangling = bytes;
  dangling.push_back(1);  // a type without a length
  CHECK(gateway::wire::decode_hello(dangling, out) == gateway::wire::DecodeError::bad_extension);
  std::vector<std::uint8_t> huge = bytes;
  huge.resize(gateway::wire::kMaxHelloSize + 1);
  CHECK(gateway::wire::decode_hello(huge, out) == gateway::wire::DecodeError::too_large);
}

TEST_CASE("wire: PACKET header and unknown types") {
  std::vector<std::uint8_t> msg = {0, 0x45, 0, 0};
  gateway::wire::write_packet_header(std::span(msg).first(gateway::wire::kPacketHeaderSize));
  gateway::wire::Message message;
  REQUIRE(gateway::wire::decode(msg, message) == gateway::wire::DecodeError::none);
  CHECK(message.type == gateway::wire::Type::packet);
  CHECK(message.body.size() == 3);
  CHECK(message.body[0] == 0x45);

  std::vector<std::uint8_t> unknown = {0x7f, 1, 2};
  CHECK(gateway::wire::decode(unknown, message) == gateway::wire::DecodeError::unknown_type);
  CHECK(gateway::wire::decode({}, message) == gateway::wire::DecodeError::empty);
}
