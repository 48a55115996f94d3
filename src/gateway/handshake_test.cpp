// Authentication and sealing end to end over two gateways: the right key opens the tunnel and
// every message after AUTH is sealed; a wrong or missing key, a mismatch, and forged, modified,
// replayed or moved messages are refused and counted, and nothing of theirs reaches the TUN.

#include "src/gateway/handshake.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include "src/gateway/gateway_test_sites.hpp"

using namespace gateway::test_sites;

namespace {

using Packets = std::vector<std::vector<std::uint8_t>>;

crypto::Key key_from(std::uint8_t fill) {
  crypto::Key key;
  key.fill(fill);
  return key;
}

gateway::PeerSecurity keyed(std::uint8_t fill, bool seal = true, bool compress = true) {
  REQUIRE(crypto::init());
  gateway::PeerSecurity s = TwoSites::plain(compress);
  s.psk = key_from(fill);
  s.seal = seal;
  return s;
}

bool contains_bytes(const std::vector<std::uint8_t>& hay, std::span<const std::uint8_t> needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// The data messages gw1 sent (not stream 0).
std::vector<std::vector<std::uint8_t>> data_messages(const transport::LoopbackTransport& t) {
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& [stream, bytes] : t.sent_log) {
    if (stream != gateway::wire::kControlStream) out.push_back(bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("security: the same key opens the tunnel; every message after AUTH is sealed") {
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    TwoSites s(keyed(7, true, compress), keyed(7, true, compress));
    s.up();
    REQUIRE(s.gw1.peers()[0].ready_assocs.size() == 1);
    REQUIRE(s.gw2.peers()[0].ready_assocs.size() == 1);
    // Stream 0 carried HELLO then AUTH in clear, nothing else unsealed.
    const auto& log = s.link.a().sent_log;
    REQUIRE(log.size() == 2);
    CHECK(log[0].second[0] == static_cast<std::uint8_t>(gateway::wire::Type::hello));
    CHECK(log[1].second[0] == static_cast<std::uint8_t>(gateway::wire::Type::auth));

    Packets sent;
    for (int i = 0; i < 3; ++i) sent.push_back(tcp4_segment(100 + 1000 * i, 9, 1000));
    for (int i = 0; i < 4; ++i) sent.push_back(tcp4_segment(5000, 20 + i, 0, 100 + i));  // a burst
    for (auto& p : sent) s.tun1.inject(p);
    s.gw1.read_tun();
    s.link.deliver();
    CHECK(s.tun2.take_written() == sent);
    auto messages = data_messages(s.link.a());
    REQUIRE(!messages.empty());
    for (const auto& m : messages) {
      CHECK(m[0] == static_cast<std::uint8_t>(gateway::wire::Type::sealed));
      // The payload is not readable on the wire (test payload bytes are i * 7 + 1).
      CHECK_FALSE(contains_bytes(m, std::span(sent[0]).subspan(40, 24)));
    }
    CHECK(s.gw2.counters().dropped_total() == 0);
    CHECK(s.gw1.peers()[0].handshake_failures == 0);
  }
}

TEST_CASE("security: a wrong key, a missing key or another encryption setting is refused") {
  struct Case {
    const char* name;
    gateway::PeerSecurity a, b;
    const char* reason_a;
  };
  std::vector<Case> cases = {
      {"wrong key", keyed(1), keyed(2), "authentication failed"},
      {"no key on the far side", keyed(1), TwoSites::plain(), "the peer does not authenticate"},
      {"no key here", TwoSites::plain(), keyed(1), "the peer expects a pre-shared key"},
      {"aead against none", keyed(1, true), keyed(1, false),
       "encryption mismatch: we use \"aead\", the peer \"none\""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    TwoSites s(c.a, c.b);
    s.up();
    CHECK(s.gw1.peers()[0].ready_assocs.empty());
    CHECK(s.gw2.peers()[0].ready_assocs.empty());
    CHECK(s.link.a().aborts + s.link.b().aborts >= 1);
    CHECK(s.gw1.peers()[0].handshake_failures + s.gw2.peers()[0].handshake_failures >= 1);
    if (s.gw1.peers()[0].handshake_failures) {
      INFO(s.gw1.peers()[0].last_handshake_failure);
      CHECK(s.gw1.peers()[0].last_handshake_failure.find(c.reason_a) != std::string::npos);
    }
    // Nothing passes: there is no association to send on.
    s.tun1.inject(tcp4_segment(1, 1, 10));
    s.gw1.read_tun();
    s.link.deliver();
    CHECK(s.tun2.take_written().empty());
    CHECK(s.gw1.counters().dropped(gateway::Drop::peer_down) == 1);
  }
}

TEST_CASE(
    "security: forged, modified, replayed, moved and unsealed messages are dropped and counted") {
  TwoSites s(keyed(9), keyed(9));
  s.up();
  REQUIRE(s.gw2.peers()[0].ready_assocs.size() == 1);
  auto first = tcp4_segment(1, 1, 300);
  s.tun1.inject(first);
  s.gw1.read_tun();
  std::vector<std::uint8_t> captured = s.link.a().sent_log.back().second;
  std::uint16_t stream = s.link.a().sent_log.back().first;
  s.link.deliver();
  REQUIRE(s.tun2.take_written() == Packets{first});

  transport::AssocId assoc = s.gw2.assocs().begin()->first;
  auto inject = [&](std::uint16_t on_stream, const std::vector<std::uint8_t>& bytes) {
    tun::PacketBuf buf;
    buf.assign(bytes);
    s.gw2.on_message(assoc, on_stream, buf);
  };
  inject(stream, captured);  // replayed
  auto modified = captured;
  modified[60] ^= 1;
  inject(stream, modified);
  inject(static_cast<std::uint16_t>(stream + 1), captured);  // moved to another stream
  std::vector<std::uint8_t> garbage(200, 0x55);
  garbage[0] = static_cast<std::uint8_t>(gateway::wire::Type::sealed);
  inject(stream, garbage);  // forged
  inject(stream,
         {static_cast<std::uint8_t>(gateway::wire::Type::sealed), 1, 2});  // shorter than a tag
  CHECK(s.gw2.counters().dropped(gateway::Drop::auth_failed) == 5);

  std::vector<std::uint8_t> plain(first.size() + 1);
  plain[0] = static_cast<std::uint8_t>(gateway::wire::Type::packet);
  std::copy(first.begin(), first.end(), plain.begin() + 1);
  inject(stream, plain);
  inject(gateway::wire::kControlStream,
         {static_cast<std::uint8_t>(gateway::wire::Type::context_reset), 0, 1});
  CHECK(s.gw2.counters().dropped(gateway::Drop::not_sealed) == 2);
  CHECK(s.tun2.take_written().empty());

  // None of it disturbed the stream: the next real packet opens with the expected counter.
  auto next = tcp4_segment(301, 2, 300);
  s.tun1.inject(next);
  s.gw1.read_tun();
  s.link.deliver();
  CHECK(s.tun2.take_written() == Packets{next});
}

TEST_CASE("security: encryption = none with a key authenticates and sends packets in clear") {
  TwoSites s(keyed(3, false), keyed(3, false));
  s.up();
  REQUIRE(s.gw1.peers()[0].ready_assocs.size() == 1);
  auto p = tcp4_segment(1, 1, 100);
  s.tun1.inject(p);
  s.gw1.read_tun();
  CHECK(data_messages(s.link.a()).back()[0] !=
        static_cast<std::uint8_t>(gateway::wire::Type::sealed));
  s.link.deliver();
  CHECK(s.tun2.take_written() == Packets{p});

  TwoSites wrong(keyed(3, false), keyed(4, false));
  wrong.up();
  CHECK(wrong.gw1.peers()[0].ready_assocs.empty());
  CHECK(wrong.gw1.peers()[0].last_handshake_failure.find("authentication failed") !=
        std::string::npos);
}

TEST_CASE("handshake: reflected HELLOs and AUTHs, second HELLOs and early AUTHs are refused") {
  gateway::PeerSecurity s = keyed(5);
  std::string reason;
  gateway::Handshake a(s, 1), b(s, 2);
  CHECK_FALSE(a.on_peer_auth(b.hello(), reason));  // AUTH before any HELLO
  {
    gateway::Handshake self(s, 1);
    CHECK_FALSE(self.on_peer_hello(self.hello(), reason));  // our own nonce back
    CHECK(reason.find("reflection") != std::string::npos);
  }
  REQUIRE(a.on_peer_hello(b.hello(), reason));
  REQUIRE(b.on_peer_hello(a.hello(), reason));
  CHECK_FALSE(a.on_peer_hello(b.hello(), reason));  // a second HELLO
  auto a_auth = a.auth();
  CHECK_FALSE(a.on_peer_auth(a_auth, reason));  // our own proof reflected
  CHECK(b.on_peer_auth(a_auth, reason));
  CHECK(a.on_peer_auth(b.auth(), reason));
  CHECK(a.peer_authenticated());
  REQUIRE(a.session());
  REQUIRE(b.session());
  CHECK(a.session()->cipher() == b.session()->cipher());

  // Sessions agree per direction and stream.
  std::vector<std::uint8_t> msg = {1, 2, 3, 4, 5}, sealed(5 + crypto::kTagSize);
  a.session()->seal(4, msg, sealed.data());
  a.session()->commit_sent(4);
  auto copy = sealed;
  CHECK(b.session()->open(4, copy));
  CHECK(std::equal(msg.begin(), msg.end(), copy.begin()));
  copy = sealed;
  CHECK_FALSE(b.session()->open(4, copy));   // the same again: a replay
  a.session()->seal(4, msg, sealed.data());  // counter 1, not committed: sealing again is the same
  std::vector<std::uint8_t> again(sealed.size());
  a.session()->seal(4, msg, again.data());
  CHECK(again == sealed);
  CHECK(b.session()->open(4, sealed));
}

TEST_CASE("crypto: keys parse from base64 only at 32 bytes; both ciphers round trip") {
  REQUIRE(crypto::init());
  std::string error;
  std::string text = crypto::generate_key();
  CHECK(crypto::parse_key("  " + text + "\n", error).has_value());
  CHECK_FALSE(crypto::parse_key(text.substr(0, 40), error).has_value());
  CHECK_FALSE(crypto::parse_key(text + "AAAA", error).has_value());
  CHECK(crypto::generate_key() != text);

  for (crypto::Cipher cipher : {crypto::Cipher::chacha20_poly1305, crypto::Cipher::aes256_gcm}) {
    if (cipher == crypto::Cipher::aes256_gcm && !crypto::aes_gcm_available()) continue;
    CAPTURE(crypto::to_string(cipher));
    crypto::Nonce n1 = crypto::random_nonce(), n2 = crypto::random_nonce();
    crypto::Session x(key_from(1), n1, n2, cipher), y(key_from(1), n2, n1, cipher);
    crypto::Session wrong(key_from(2), n2, n1, cipher);
    std::vector<std::uint8_t> big(65000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 13);
    std::vector<std::uint8_t> sealed(big.size() + crypto::kTagSize);
    x.seal(1, big, sealed.data());
    auto copy = sealed;
    CHECK_FALSE(wrong.open(1, copy));
    copy = sealed;
    REQUIRE(y.open(1, copy));
    CHECK(std::equal(big.begin(), big.end(), copy.begin()));
  }
}
