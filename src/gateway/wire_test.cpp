#include "src/gateway/wire.hpp"

#include <doctest/doctest.h>

#include <array>
#include <span>
#include <vector>

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
  CHECK(gateway::wire::decode_hello(std::span(bytes).first(gateway::wire::kHelloFixedSize - 1),
                                    out) == gateway::wire::DecodeError::truncated);
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

TEST_CASE("wire: CONTEXT_RESET round trip and malformed ones") {
  const auto msg = gateway::wire::encode_context_reset(0x1234);
  CHECK(msg == std::array<std::uint8_t, 3>{0x06, 0x12, 0x34});
  std::uint16_t stream = 0;
  REQUIRE(gateway::wire::decode_context_reset(msg, stream) == gateway::wire::DecodeError::none);
  CHECK(stream == 0x1234);
  gateway::wire::Message message;
  REQUIRE(gateway::wire::decode(msg, message) == gateway::wire::DecodeError::none);
  CHECK(message.type == gateway::wire::Type::context_reset);

  const std::uint8_t short_one[] = {0x06, 0x12};
  const std::uint8_t long_one[] = {0x06, 0x12, 0x34, 0x00};
  const std::uint8_t other[] = {0x02, 0x12, 0x34};
  CHECK(gateway::wire::decode_context_reset(short_one, stream) ==
        gateway::wire::DecodeError::truncated);
  CHECK(gateway::wire::decode_context_reset(long_one, stream) ==
        gateway::wire::DecodeError::truncated);
  CHECK(gateway::wire::decode_context_reset(other, stream) ==
        gateway::wire::DecodeError::unknown_type);
  CHECK(gateway::wire::decode_context_reset({}, stream) == gateway::wire::DecodeError::empty);
  CHECK(stream == 0x1234);  // untouched by the failures
}

TEST_CASE("wire: SEALED layout") {
  const std::uint8_t inner[] = {0x02, 0x45, 0x00};
  std::vector<std::uint8_t> out(gateway::wire::sealed_size(sizeof inner), 0xee);
  CHECK(out.size() == 1 + 3 + 16);
  std::span<std::uint8_t> body = gateway::wire::begin_sealed(out);
  CHECK(out[0] == static_cast<std::uint8_t>(gateway::wire::Type::sealed));
  CHECK(body.data() == out.data() + 1);
  CHECK(body.size() == sizeof inner + gateway::wire::kSealedTagSize);
  CHECK(gateway::wire::is_sealed(out));
  CHECK(gateway::wire::sealed_body(out).data() == body.data());
  CHECK(gateway::wire::sealed_body(out).size() == body.size());
  CHECK_FALSE(gateway::wire::is_sealed(inner));
  CHECK_FALSE(gateway::wire::is_sealed({}));
}

TEST_CASE("wire: PACKET-family forms and types map both ways") {
  using gateway::wire::PacketForm;
  using gateway::wire::Type;
  CHECK(gateway::wire::packet_form(Type::packet) == PacketForm{false, false});
  CHECK(gateway::wire::packet_form(Type::packet_gso) == PacketForm{true, false});
  CHECK(gateway::wire::packet_form(Type::packet_hc) == PacketForm{false, true});
  CHECK(gateway::wire::packet_form(Type::packet_gso_hc) == PacketForm{true, true});
  for (Type t : {Type::packet, Type::packet_gso, Type::packet_hc, Type::packet_gso_hc})
    CHECK(gateway::wire::packet_type(gateway::wire::packet_form(t)) == t);
}

TEST_CASE("wire: AUTH round trip and malformed ones") {
  crypto::Proof proof{};
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const auto msg = gateway::wire::encode_auth(proof);
  CHECK(msg.size() == 33);
  CHECK(msg[0] == static_cast<std::uint8_t>(gateway::wire::Type::auth));
  std::span<const std::uint8_t> back;
  REQUIRE(gateway::wire::decode_auth(msg, back) == gateway::wire::DecodeError::none);
  CHECK(std::vector<std::uint8_t>(back.begin(), back.end()) ==
        std::vector<std::uint8_t>(proof.begin(), proof.end()));

  std::vector<std::uint8_t> longer(msg.begin(), msg.end());
  longer.push_back(0);
  CHECK(gateway::wire::decode_auth(longer, back) == gateway::wire::DecodeError::truncated);
  CHECK(gateway::wire::decode_auth(std::span(msg).first(32), back) ==
        gateway::wire::DecodeError::truncated);
  std::vector<std::uint8_t> other(msg.begin(), msg.end());
  other[0] = static_cast<std::uint8_t>(gateway::wire::Type::hello);
  CHECK(gateway::wire::decode_auth(other, back) == gateway::wire::DecodeError::unknown_type);
  CHECK(gateway::wire::decode_auth({}, back) == gateway::wire::DecodeError::empty);
}

TEST_CASE("wire: SEQUENCED header round trip and malformed ones") {
  std::vector<std::uint8_t> msg(gateway::wire::kSequencedHeaderSize + 3);
  gateway::wire::write_sequenced_header(msg, 0xdeadbeef, 0xfffffffe);
  msg[gateway::wire::kSequencedHeaderSize] =
      static_cast<std::uint8_t>(gateway::wire::Type::packet_hc);
  gateway::wire::Sequenced s;
  REQUIRE(gateway::wire::decode_sequenced(msg, s) == gateway::wire::DecodeError::none);
  CHECK(s.stripe == 0xdeadbeef);
  CHECK(s.seq == 0xfffffffe);
  CHECK(s.inner == gateway::wire::Type::packet_hc);
  gateway::wire::Message m;
  REQUIRE(gateway::wire::decode(msg, m) == gateway::wire::DecodeError::none);
  CHECK(m.type == gateway::wire::Type::sequenced);
  // Nothing after the header, or an inner message that is no packet (a BUNDLE, another SEQUENCED).
  CHECK(gateway::wire::decode_sequenced(std::span(msg).first(9), s) ==
        gateway::wire::DecodeError::truncated);
  for (auto inner :
       {gateway::wire::Type::bundle, gateway::wire::Type::sequenced, gateway::wire::Type::hello}) {
    msg[gateway::wire::kSequencedHeaderSize] = static_cast<std::uint8_t>(inner);
    CHECK(gateway::wire::decode_sequenced(msg, s) == gateway::wire::DecodeError::unknown_type);
  }
  msg[0] = static_cast<std::uint8_t>(gateway::wire::Type::packet);
  CHECK(gateway::wire::decode_sequenced(msg, s) == gateway::wire::DecodeError::unknown_type);
}
