// libFuzzer target for the udp transport's receiving side (src/transport/udp/usrsctp_receive.cpp,
// usrsctp_paths.cpp, usrsctp_fec.cpp): raw UDP datagrams from the network, from the peer's
// proven addresses and from addresses that are no path, into a transport whose association with
// a genuine peer is established. Built and run by fuzz/run.sh transport_datagrams.
//
// Set up once per process (usrsctp is a global library and an association takes real time to
// come up): two UsrsctpTransports over the in-memory network (fake_network.hpp), site a
// (192.0.2.1, 2001:db8::1) and site b (192.0.2.2, 2001:db8::2), each knowing the other's two
// addresses (two paths: probed, with a path monitor), a path key and FEC agreed, pool 1. Both
// keep running between inputs: every input turns the loop, so their heartbeats, probes and
// timers go on in real time. The fuzzer's datagrams arrive at b's sockets.
//
// The input is a sequence of datagrams, each [selector][length hi][length lo][bytes]:
//   selector bits 0-1: the source: 0 a's IPv4 address, 1 a's IPv6 address (both proven: the
//                      paths b knows), 2 198.18.0.2, 3 2001:db8::66 (no path of b's)
//            bit 2:    source port 9899 (else 40400)
//            bits 3-5: the shape the harness gives the bytes:
//              0 as they are
//              1 an SCTP packet: its CRC32c set
//              2 an SCTP packet: ports and verification tag of a's latest packet to b, CRC32c set
//              3 an authenticated probe of the peer's key: kind, path id, sequence, stamp and
//                cookie from the bytes (a cookie b issued cannot be guessed)
//              4 shape 2 inside an FEC DATA datagram (first byte: protected or not; then seq)
//              5 an FEC PARITY datagram with a valid MAC (first seq, k, m, index from the bytes)
//              6 an FEC REPORT datagram with a valid MAC (counters from the bytes)
//              7 a plain (keyless) 24-byte path probe: kind, path id, seq from the bytes
//            bit 6:    (of the first record) every datagram of the input comes from an address
//                      that is no path (source bit 1 set)
// Whatever the bytes, no crash, no leak, no undefined behaviour, and:
//  - no path of b's is learned or moved and its paths stay the configured two: learning needs
//    the answer to a challenge (a cookie b sent to the new address), which no input carries;
//  - b's counters (TransportStats) never go down;
//  - an input whose datagrams all come from addresses that are no path changes nothing about the
//    association (no association of b's goes down or comes up), checked while b's association
//    is established and no association event came for a second (the loop turns a few times
//    after an input from a proven address, so that its answers have arrived).
//
// The seed corpus (fuzz/corpus/transport_datagrams) is written by fuzz/make_seeds.py.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/base/crc32c.hpp"
#include "src/base/log.hpp"
#include "src/crypto/session.hpp"
#include "src/fec/wire.hpp"
#include "src/transport/path_auth.hpp"
#include "src/transport/udp/fake_network.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"

namespace {

using transport::AssocId;
using transport::PeerId;
using transport::udp::FakeNetwork;
using transport::udp::UsrsctpTransport;
namespace path_auth = transport::path_auth;

void check(bool ok) {
  if (!ok) std::abort();
}

base::Endpoint ep(const char* address, std::uint16_t port = 9899) {
  return *base::Endpoint::parse(address, port);
}

crypto::Key psk() {
  crypto::Key key{};
  key[0] = 42;
  return key;
}

struct Recorder final : transport::Events {
  std::set<AssocId> up;
  std::uint64_t changes = 0;  // associations up or down
  void on_assoc_up(AssocId assoc, PeerId, std::uint16_t) override {
    up.insert(assoc);
    ++changes;
  }
  void on_assoc_down(AssocId assoc) override {
    up.erase(assoc);
    ++changes;
  }
  void on_message(AssocId, std::uint16_t, tun::PacketBuf&) override {}
  void on_writable() override {}
};

// A network that hands out FakeNetwork's sockets and keeps them, so datagrams can be put into
// a socket's inbox directly (FakeSocket::arrive), as if from anywhere.
struct Network final : transport::udp::Network {
  FakeNetwork& fake;
  std::vector<transport::udp::FakeSocket*> opened;
  explicit Network(FakeNetwork& f) : fake(f) {}
  std::unique_ptr<transport::udp::DatagramSocket> open(const base::Endpoint& local,
                                                       std::uint32_t fwmark, int buffer) override {
    auto socket = fake.open(local, fwmark, buffer);
    opened.push_back(static_cast<transport::udp::FakeSocket*>(socket.get()));
    return socket;
  }
  transport::udp::RouteView route(const base::Endpoint& remote, std::uint32_t fwmark,
                                  const base::Endpoint* local) override {
    return fake.route(remote, fwmark, local);
  }
};

struct Site {
  Recorder events;
  std::unique_ptr<Network> network;
  std::unique_ptr<UsrsctpTransport> transport;
};

struct World {
  base::EventLoop loop;
  FakeNetwork fake{loop, 1};
  Site a, b;
  std::uint8_t sctp_head[8] = {};  // ports and verification tag of a's latest SCTP packet to b
  path_auth::PathKey key = path_auth::derive(psk());
  crypto::Key fec_key = path_auth::fec_key(key);
  std::vector<std::string> b_paths;  // "local -> remote", as configured
  double last_change = 0;            // loop time of the last association event (either site)
  std::uint64_t changes_seen = 0;
  int inputs_since_proven = 0;

  World() {
    make(a, {"192.0.2.1", "2001:db8::1"}, {"192.0.2.2", "2001:db8::2"}, "b");
    make(b, {"192.0.2.2", "2001:db8::2"}, {"192.0.2.1", "2001:db8::1"}, "a");
    fake.set_tap(
        [this](const base::Endpoint& from, const base::Endpoint&, std::span<const std::uint8_t> d) {
          if (d.size() >= 12 && d[0] != 0 && (from == ep("192.0.2.1") || from == ep("2001:db8::1")))
            std::memcpy(sctp_head, d.data(), 8);
        });
    a.transport->start();
    b.transport->start();
    a.transport->set_fec(0, true);
    b.transport->set_fec(0, true);
    auto ready = [&] {
      return a.events.up.size() == 1 && b.events.up.size() == 1 &&
             sctp_head[4] + sctp_head[5] + sctp_head[6] + sctp_head[7] != 0;
    };
    for (int i = 0; i < 200000 && !ready(); ++i) {
      loop.run_once();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    check(ready());
    auto assocs = b.transport->associations();
    for (const auto& p : assocs.front().paths) b_paths.push_back(p.local + " -> " + p.remote);
    check(b_paths.size() == 2);
  }

  void note_changes() {
    std::uint64_t changes = a.events.changes + b.events.changes;
    if (changes != changes_seen) last_change = loop.now();
    changes_seen = changes;
  }

  void make(Site& site, std::vector<const char*> locals, std::vector<const char*> remotes,
            const char* name) {
    site.network = std::make_unique<Network>(fake);
    transport::udp::UsrsctpOptions options;
    for (const char* l : locals) options.locals.push_back(ep(l));
    options.network = site.network.get();
    transport::PeerEndpoints peer;
    peer.name = name;
    for (const char* r : remotes) peer.remotes.push_back(ep(r));
    peer.pool = 1;
    peer.path_key = path_auth::derive(psk());
    peer.fec = true;
    site.transport = std::make_unique<UsrsctpTransport>(loop, options, std::vector{peer});
    site.transport->set_events(&site.events);
  }
};

// Every TransportStats field is a counter (or a maximum): none may go down.
constexpr std::size_t kCounters = sizeof(transport::TransportStats) / sizeof(std::uint64_t);
static_assert(sizeof(transport::TransportStats) == kCounters * sizeof(std::uint64_t));
std::array<std::uint64_t, kCounters> counters(const transport::TransportStats& stats) {
  std::array<std::uint64_t, kCounters> out;
  std::memcpy(out.data(), &stats, sizeof stats);
  return out;
}

std::uint64_t load(std::span<const std::uint8_t> b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = v << 8 | (at + i < b.size() ? b[at + i] : 0);
  return v;
}

// The datagram of one input record, shaped as its selector says.
std::vector<std::uint8_t> shape(World& w, std::uint8_t selector, std::span<const std::uint8_t> in) {
  std::vector<std::uint8_t> d(in.begin(), in.end());
  auto sctp = [&](std::vector<std::uint8_t>& p, bool head) {
    if (p.size() < 12) p.resize(12);
    if (head) std::memcpy(p.data(), w.sctp_head, 8);
    base::crc32c::set_sctp_checksum(p);
  };
  switch (selector >> 3 & 7) {
    case 0:
      break;
    case 1:
      sctp(d, false);
      break;
    case 2:
      sctp(d, true);
      break;
    case 3: {
      path_auth::Probe probe;
      probe.kind = load(in, 0, 1) & 1 ? path_auth::kEcho : path_auth::kRequest;
      probe.path_id = static_cast<std::uint8_t>(load(in, 1, 1));
      probe.seq = static_cast<std::uint32_t>(load(in, 2, 4));
      probe.stamp = load(in, 6, 8);
      probe.cookie = load(in, 14, 8);
      auto bytes = path_auth::encode(probe, w.key);
      d.assign(bytes.begin(), bytes.end());
      break;
    }
    case 4: {
      std::vector<std::uint8_t> packet(in.begin() + std::min<std::size_t>(in.size(), 5), in.end());
      sctp(packet, true);
      d.assign(fec::wire::kDataHeader, 0);
      fec::wire::encode_data_header(static_cast<std::uint32_t>(load(in, 1, 4)), load(in, 0, 1) & 1,
                                    d.data());
      d.insert(d.end(), packet.begin(), packet.end());
      break;
    }
    case 5: {
      fec::wire::Parity p;
      p.first = static_cast<std::uint32_t>(load(in, 0, 4));
      p.k = static_cast<std::uint8_t>(1 + load(in, 4, 1) % fec::wire::kMaxData);
      p.m = static_cast<std::uint8_t>(1 + load(in, 5, 1) % fec::wire::kMaxParity);
      p.index = static_cast<std::uint8_t>(load(in, 6, 1) % p.m);
      std::vector<std::uint8_t> symbol(in.begin() + std::min<std::size_t>(in.size(), 7), in.end());
      if (symbol.size() < fec::wire::kSymbolPrefix) symbol.resize(fec::wire::kSymbolPrefix);
      p.symbol = symbol;
      d.resize(fec::wire::parity_size(symbol.size()));
      auto out = fec::wire::encode_parity(p, w.fec_key, d);
      d.resize(out.size());
      break;
    }
    case 6: {
      fec::wire::Report r;
      r.highest_seq = static_cast<std::uint32_t>(load(in, 0, 4));
      r.received = static_cast<std::uint32_t>(load(in, 4, 4));
      r.lost = static_cast<std::uint32_t>(load(in, 8, 4));
      r.rebuilt = static_cast<std::uint32_t>(load(in, 12, 4));
      r.unrecovered = static_cast<std::uint32_t>(load(in, 16, 4));
      auto bytes = fec::wire::encode_report(r, w.fec_key);
      d.assign(bytes.begin(), bytes.end());
      break;
    }
    case 7: {
      d.assign(24, 0);
      base::store_be32(d.data() + 4, path_auth::kMagic);
      d[8] = static_cast<std::uint8_t>(load(in, 0, 1) % 4);
      d[9] = static_cast<std::uint8_t>(load(in, 1, 1));
      base::store_be32(d.data() + 12, static_cast<std::uint32_t>(load(in, 2, 4)));
      break;
    }
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = [] {
    base::log::set_level(base::log::Level::error);
    check(crypto::init());
    return new World();  // kept to the end of the process, as usrsctp is
  }();
  World& w = *world;
  static const base::Endpoint sources[4][2] = {
      {ep("192.0.2.1", 40400), ep("192.0.2.1")},
      {ep("2001:db8::1", 40400), ep("2001:db8::1")},
      {ep("198.18.0.2", 40400), ep("198.18.0.2")},
      {ep("2001:db8::66", 40400), ep("2001:db8::66")},
  };
  // b's sockets: 0 is IPv4, 1 is IPv6 (the order of its locals).
  transport::udp::FakeSocket* b_socket[2] = {w.b.network->opened.at(0), w.b.network->opened.at(1)};

  // After an input from a proven address, the loop turns until its answers have arrived, so
  // an input from elsewhere is judged on its own.
  const bool unproven_only = size > 0 && data[0] & 0x40;
  if (unproven_only) {
    for (; w.inputs_since_proven < 4; ++w.inputs_since_proven) w.loop.run_once();
    w.note_changes();
  }
  auto before = counters(w.b.transport->stats());
  std::set<AssocId> up_before = w.b.events.up;
  std::uint64_t changes_before = w.b.events.changes;
  bool was_quiet = w.loop.now() - w.last_change > 1.0 && up_before.size() == 1 &&
                   w.b.transport->associations().front().state == "established";
  bool proven = false;
  for (int records = 0; size >= 3 && records < 64; ++records) {
    std::uint8_t selector = data[0];
    std::size_t len = std::min<std::size_t>(base::load_be16(data + 1), size - 3);
    std::span<const std::uint8_t> bytes(data + 3, len);
    data += 3 + len;
    size -= 3 + len;
    std::size_t source = (selector & 3) | (unproven_only ? 2 : 0);
    proven |= source < 2;
    auto datagram = shape(w, selector, bytes);
    b_socket[source & 1]->arrive(sources[source][selector >> 2 & 1], datagram);
  }
  w.loop.run_once();  // b reads its sockets (and the loop goes on for both sites)

  auto after = counters(w.b.transport->stats());
  for (std::size_t i = 0; i < kCounters; ++i) check(after[i] >= before[i]);
  const transport::TransportStats stats = w.b.transport->stats();
  check(stats.paths_learned == 0 && stats.path_moves == 0);
  auto assocs = w.b.transport->associations();
  check(assocs.size() == 1);
  std::vector<std::string> paths;
  for (const auto& p : assocs.front().paths) paths.push_back(p.local + " -> " + p.remote);
  check(paths == w.b_paths);
  if (!proven && was_quiet) {
    check(w.b.events.changes == changes_before);
    check(w.b.events.up == up_before);
  }
  w.note_changes();
  w.inputs_since_proven = proven ? 0 : w.inputs_since_proven + 1;
  return 0;
}
