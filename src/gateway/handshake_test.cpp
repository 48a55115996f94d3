// Authentication and sealing end to end over two gateways: the right key opens the tunnel and
// every message after AUTH is sealed; a wrong or missing key, a mismatch, and forged, modified,
// replayed or moved messages are refused and counted, and nothing of theirs reaches the TUN.

#include "src/gateway/handshake.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>

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

// An on-path attacker terminating two associations of one gateway (or one gateway's pool talking
// to itself): whatever the gateway sends on one association is delivered to it on the other, so
// each association sees the other's HELLO and AUTH as the peer's.
class CrossedTransport final : public transport::Transport {
 public:
  static constexpr transport::AssocId kX = 1, kY = 2;
  void set_events(transport::Events* events) override { events_ = events; }
  void start() override {}
  transport::SendResult send(transport::AssocId assoc, std::uint16_t stream,
                             std::span<const std::uint8_t> msg,
                             transport::SendOptions /*options*/ = {}) override {
    if (!up(assoc)) return transport::SendResult::closed;
    std::vector<std::uint8_t> bytes(msg.begin(), msg.end());
    if (alter_hello_instance && bytes[0] == static_cast<std::uint8_t>(gateway::wire::Type::hello))
      bytes[15] ^= 0x5a;  // the low byte of the instance id
    queue_.push_back({assoc == kX ? kY : kX, stream, std::move(bytes)});
    return transport::SendResult::ok;
  }
  void abort(transport::AssocId assoc, const char*) override {
    if (!up(assoc)) return;
    ++aborts;
    (assoc == kX ? x_up_ : y_up_) = false;
    events_->on_assoc_down(assoc);
  }
  std::vector<transport::AssocInfo> associations() const override {
    std::vector<transport::AssocInfo> out;
    for (transport::AssocId id : {kX, kY}) {
      if (!up(id)) continue;
      transport::AssocInfo info;
      info.id = id;
      info.state = "established";
      info.out_streams = 16;
      out.push_back(info);
    }
    return out;
  }
  transport::TransportStats stats() const override { return {}; }
  const char* kind() const override { return "crossed"; }

  void bring_up() {
    x_up_ = y_up_ = true;
    events_->on_assoc_up(kX, 0, 16);
    events_->on_assoc_up(kY, 0, 16);
  }
  // Delivers every queued message (and what the handlers send in reply) to the other association.
  void deliver() {
    tun::PacketBuf buf;
    while (!queue_.empty()) {
      Queued q = std::move(queue_.front());
      queue_.erase(queue_.begin());
      if (!up(q.to)) continue;
      buf.assign(q.bytes);
      events_->on_message(q.to, q.stream, buf);
    }
  }
  std::size_t aborts = 0;
  bool alter_hello_instance = false;  // rewrite the instance id of every HELLO in transit

 private:
  struct Queued {
    transport::AssocId to;
    std::uint16_t stream;
    std::vector<std::uint8_t> bytes;
  };
  bool up(transport::AssocId id) const { return id == kX ? x_up_ : id == kY && y_up_; }
  transport::Events* events_ = nullptr;
  std::vector<Queued> queue_;
  bool x_up_ = false, y_up_ = false;
};

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
    std::vector<std::uint8_t> hello_a = {1, 2, 3}, hello_b = {4, 5};
    crypto::Transcript transcript{hello_a, hello_b};
    crypto::Session x(key_from(1), crypto::Role::a, transcript, cipher),
        y(key_from(1), crypto::Role::b, transcript, cipher);
    crypto::Session wrong(key_from(2), crypto::Role::b, transcript, cipher);
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

TEST_CASE("handshake: HELLOs and AUTHs swapped between two of our associations are refused") {
  gateway::PeerSecurity s = keyed(6);
  std::string reason;
  // Two associations of the same gateway (same instance): an attacker hands each the other's
  // HELLO, then the other's AUTH.
  gateway::Handshake x(s, 7), y(s, 7);
  bool x_hello = x.on_peer_hello(y.hello(), reason);
  bool y_hello = y.on_peer_hello(x.hello(), reason);
  CHECK_FALSE(x_hello);
  CHECK_FALSE(y_hello);
  CHECK(reason.find("reflection") != std::string::npos);
  if (x_hello && y_hello) {
    CHECK_FALSE(x.on_peer_auth(y.auth(), reason));
    CHECK_FALSE(y.on_peer_auth(x.auth(), reason));
    // What x seals must not open as the peer's on y.
    std::vector<std::uint8_t> msg = {1, 2, 3}, sealed(3 + crypto::kTagSize);
    x.session()->seal(1, msg, sealed.data());
    CHECK_FALSE(y.session()->open(1, sealed));
  }
}

TEST_CASE("security: a gateway whose two associations are crossed into each other refuses both") {
  REQUIRE(crypto::init());
  for (bool seal : {true, false}) {
    CAPTURE(seal);
    base::EventLoop loop;
    FakeBypass bypass;
    tun::FakeTun tun{"tun1"};
    CrossedTransport crossed;
    gateway::Gateway gw(loop, tun, crossed, &bypass,
                        policy::Policy({tunnel_rule("10.2.0.0/16"), tunnel_rule("10.1.0.0/16")},
                                       policy::Action::drop),
                        TwoSites::options(1, keyed(8, seal)));
    crossed.bring_up();
    crossed.deliver();
    CHECK(gw.peers()[0].ready_assocs.empty());
    CHECK(crossed.aborts == 2);
    CHECK(gw.peers()[0].handshake_failures == 2);
    CHECK(gw.counters().handshake_failures == 2);
    INFO(gw.peers()[0].last_handshake_failure);
    CHECK(gw.peers()[0].last_handshake_failure.find("reflection") != std::string::npos);
    // Nothing of ours comes back into our own TUN.
    tun.inject(tcp4_segment(1, 1, 100));
    gw.read_tun();
    crossed.deliver();
    CHECK(tun.take_written().empty());
  }
}

TEST_CASE("security: a crossed HELLO with its instance id altered is refused by its nonce") {
  REQUIRE(crypto::init());
  base::EventLoop loop;
  FakeBypass bypass;
  tun::FakeTun tun{"tun1"};
  CrossedTransport crossed;
  crossed.alter_hello_instance = true;
  gateway::Gateway gw(loop, tun, crossed, &bypass,
                      policy::Policy({tunnel_rule("10.2.0.0/16")}, policy::Action::drop),
                      TwoSites::options(1, keyed(8)));
  crossed.bring_up();
  crossed.deliver();
  CHECK(gw.peers()[0].ready_assocs.empty());
  CHECK(gw.peers()[0].handshake_failures >= 1);
  INFO(gw.peers()[0].last_handshake_failure);
  CHECK(gw.peers()[0].last_handshake_failure.find("nonce of another of our associations") !=
        std::string::npos);
}

TEST_CASE("handshake: both sides agree on a key per direction, and the two directions differ") {
  gateway::PeerSecurity s = keyed(4);
  std::string reason;
  gateway::Handshake a(s, 0x11111111), b(s, 0x22222222);
  REQUIRE(b.on_peer_hello(a.hello(), reason));
  REQUIRE(a.on_peer_hello(b.hello(), reason));
  REQUIRE(a.on_peer_auth(b.auth(), reason));
  REQUIRE(b.on_peer_auth(a.auth(), reason));
  CHECK(a.auth() != b.auth());
  std::vector<std::uint8_t> msg = {9, 8, 7, 6}, a_sealed(4 + crypto::kTagSize),
                            b_sealed(4 + crypto::kTagSize);
  a.session()->seal(3, msg, a_sealed.data());
  b.session()->seal(3, msg, b_sealed.data());
  // Same stream, counter and plaintext: only the direction's key differs.
  CHECK(a_sealed != b_sealed);
  auto copy = a_sealed;
  CHECK_FALSE(a.session()->open(3, copy));  // our own message is not the peer's
  copy = b_sealed;
  CHECK_FALSE(b.session()->open(3, copy));
  copy = a_sealed;
  REQUIRE(b.session()->open(3, copy));
  CHECK(std::equal(msg.begin(), msg.end(), copy.begin()));
  copy = b_sealed;
  REQUIRE(a.session()->open(3, copy));
  CHECK(std::equal(msg.begin(), msg.end(), copy.begin()));
}

TEST_CASE("handshake: a HELLO of protocol version 1 is refused with the upgrade in the reason") {
  gateway::PeerSecurity s = keyed(4);
  std::string reason;
  gateway::Handshake ours(s, 1), old(s, 2);
  std::vector<std::uint8_t> v1(old.hello().begin(), old.hello().end());
  v1[offsetof(gateway::wire::HelloFixed, version)] = 1;
  CHECK_FALSE(ours.on_peer_hello(v1, reason));
  CHECK(reason.find("the peer speaks protocol version 1, we speak 2") != std::string::npos);
  CHECK(reason.find("upgrade the other gateway") != std::string::npos);
}
