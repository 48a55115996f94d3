#include "src/wire.hpp"

#include <doctest/doctest.h>

TEST_CASE("wire: HELLO round trip with extensions") {
  wire::Hello hello;
  hello.capabilities = 0xa5a5'0001;
  hello.instance = 0xdeadbeef;
  hello.extensions.push_back({7, {1, 2, 3}});
  hello.extensions.push_back({9, {}});
  std::vector<std::uint8_t> bytes = wire::encode_hello(hello);
  CHECK(bytes.size() == wire::kHelloFixedSize + 5 + 2);
  CHECK(bytes[0] == static_cast<std::uint8_t>(wire::Type::hello));

  wire::Message message;
  REQUIRE(wire::decode(bytes, message) == wire::DecodeError::none);
  CHECK(message.type == wire::Type::hello);

  wire::Hello back;
  REQUIRE(wire::decode_hello(bytes, back) == wire::DecodeError::none);
  CHECK(back.version == wire::kVersion);
  CHECK(back.capabilities == hello.capabilities);
  CHECK(back.instance == hello.instance);
  REQUIRE(back.extensions.size() == 2);
  CHECK(back.extensions[0].type == 7);
  CHECK(back.extensions[0].value == std::vector<std::uint8_t>{1, 2, 3});
  CHECK(back.extensions[1].value.empty());
}

TEST_CASE("wire: malformed HELLOs are refused") {
  std::vector<std::uint8_t> bytes = wire::encode_hello(wire::Hello{});
  wire::Hello out;
  CHECK(wire::decode_hello({}, out) == wire::DecodeError::empty);
  CHECK(wire::decode_hello(std::span(bytes).first(wire::kHelloFixedSize - 1), out) ==
        wire::DecodeError::truncated);
  auto bad_magic = bytes;
  bad_magic[4] ^= 0xff;
  CHECK(wire::decode_hello(bad_magic, out) == wire::DecodeError::bad_magic);
  auto bad_ext = bytes;
  bad_ext.insert(bad_ext.end(), {1, 10, 0});  // claims 10 bytes, has 1
  CHECK(wire::decode_hello(bad_ext, out) == wire::DecodeError::bad_extension);
  auto dangling = bytes;
  dangling.push_back(1);  // a type without a length
  CHECK(wire::decode_hello(dangling, out) == wire::DecodeError::bad_extension);
  std::vector<std::uint8_t> huge = bytes;
  huge.resize(wire::kMaxHelloSize + 1);
  CHECK(wire::decode_hello(huge, out) == wire::DecodeError::too_large);
}

TEST_CASE("wire: PACKET header and unknown types") {
  std::vector<std::uint8_t> msg = {0, 0x45, 0, 0};
  wire::write_packet_header(std::span(msg).first(wire::kPacketHeaderSize));
  wire::Message message;
  REQUIRE(wire::decode(msg, message) == wire::DecodeError::none);
  CHECK(message.type == wire::Type::packet);
  CHECK(message.body.size() == 3);
  CHECK(message.body[0] == 0x45);

  std::vector<std::uint8_t> unknown = {0x7f, 1, 2};
  CHECK(wire::decode(unknown, message) == wire::DecodeError::unknown_type);
  CHECK(wire::decode({}, message) == wire::DecodeError::empty);
}
