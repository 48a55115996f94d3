#include "src/transport/path_auth.hpp"

#include <doctest/doctest.h>

using namespace transport;

TEST_CASE("path_auth: a probe round-trips and its MAC binds every byte and the key") {
  REQUIRE(crypto::init());
  crypto::Key psk{};
  psk[0] = 1;
  path_auth::PathKey key = path_auth::derive(psk);
  CHECK(key == path_auth::derive(psk));
  crypto::Key other_psk = psk;
  other_psk[31] = 7;
  path_auth::PathKey other = path_auth::derive(other_psk);
  CHECK(other.tag != key.tag);
  CHECK(other.key != key.key);

  path_auth::Probe probe{.kind = path_auth::kEcho,
                         .path_id = 3,
                         .seq = 77,
                         .stamp = 0x0102030405060708ull,
                         .key_tag = 0,
                         .cookie = 0xfeedfacecafebeefull};
  auto bytes = path_auth::encode(probe, key);
  CHECK(bytes[0] == 0);
  auto parsed = path_auth::parse(bytes);
  REQUIRE(parsed);
  CHECK(parsed->kind == path_auth::kEcho);
  CHECK(parsed->path_id == 3);
  CHECK(parsed->seq == 77);
  CHECK(parsed->stamp == 0x0102030405060708ull);
  CHECK(parsed->key_tag == key.tag);
  CHECK(parsed->cookie == 0xfeedfacecafebeefull);
  CHECK(parsed->sender == key.self);
  CHECK(key.self != 0);
  path_auth::PathKey receiver = path_auth::derive(psk);  // the other side of the pair
  CHECK(receiver == key);
  CHECK(receiver.self != key.self);
  CHECK(path_auth::verify(bytes, receiver));
  CHECK_FALSE(path_auth::verify(bytes, other));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 0x20;
    CHECK_FALSE(path_auth::verify(copy, receiver));
  }
  CHECK_FALSE(path_auth::parse(std::span(bytes).first(path_auth::kSize - 1)));
  CHECK_FALSE(path_auth::parse(std::span(bytes).first(path_auth::kSizeV1)));
  auto wrong_kind = bytes;
  wrong_kind[8] = 1;
  CHECK_FALSE(path_auth::parse(wrong_kind));
  CHECK(path_auth::random_cookie() != 0);
  CHECK(path_auth::random_cookie() != path_auth::random_cookie());
}

TEST_CASE("path_auth: our own probe reflected back does not verify; the peer's does") {
  REQUIRE(crypto::init());
  crypto::Key psk{};
  psk[0] = 9;
  // Both sides of a pair derive from the same PSK; each derivation is one sender.
  path_auth::PathKey ours = path_auth::derive(psk), theirs = path_auth::derive(psk);
  CHECK(ours.tag == theirs.tag);
  for (std::uint8_t kind : {path_auth::kRequest, path_auth::kEcho}) {
    for (std::uint64_t cookie : {std::uint64_t{0}, std::uint64_t{0x1234}}) {
      path_auth::Probe probe{
          .kind = kind, .path_id = 0, .seq = 5, .stamp = 99, .key_tag = 0, .cookie = cookie};
      CHECK_FALSE(path_auth::verify(path_auth::encode(probe, ours), ours));
      CHECK(path_auth::verify(path_auth::encode(probe, theirs), ours));
      CHECK(path_auth::verify(path_auth::encode(probe, ours), theirs));
    }
  }
}
