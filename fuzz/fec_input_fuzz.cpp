// libFuzzer target for the FEC receiving side (src/fec/receiver.hpp, src/fec/wire.hpp): whatever
// datagrams come, in whatever order and at whatever (fake) times, no crash, no leak, no undefined
// behaviour, and the receiver's books stay consistent. Built and run by fuzz/run.sh fec_input.
//
// The first input byte configures a Sender and a Receiver sharing a key (the Receiver's hold
// and max_held, the Sender's block size and redundancy). The rest is a sequence of operations,
// each an opcode byte and its operands:
//   0 RAW DATA    [len][bytes]       given to Receiver::on_data as is
//   1 RAW PARITY  [len hi][len lo][bytes]  given to Receiver::on_parity as is
//   2 PARSE       [len][bytes]       through every parser of src/fec/wire.hpp
//   3 SEND        [len][seed]        a packet through the Sender: its DATA datagram, then any
//                                    parity, queue up on a simulated wire
//   4 DELIVER                        the wire's oldest datagram to the Receiver
//   5 DROP                           the wire's oldest datagram is lost
//   6 MESS        [how][at][value]   the wire reorders, duplicates or corrupts a datagram
//   7 TIME        [dt][r]            time passes: Sender::flush, Receiver::on_timer; a new
//                                    redundancy
// (opcode bits 3.. select variants.) Every packet the Sender numbers carries its index, so while
// only the Sender's datagrams have come (reordered, duplicated, dropped, but unmodified), every
// packet delivered must be one it sent, byte for byte. Always: when nothing is held, every number
// found missing was rebuilt, given up or arrived late (lost = rebuilt + unrecovered + reordered),
// the held packets stay within max_held, and the REPORT parses back to the counters.
//
// The seed corpus (fuzz/corpus/fec_input) is written by this file built with -DFEC_FUZZ_SEEDS
// (a main that takes the output directory):
//   clang++-14 -std=c++20 -DFEC_FUZZ_SEEDS -I. fuzz/fec_input_fuzz.cpp src/fec/wire.cpp \
//     src/fec/code.cpp src/fec/sender.cpp src/fec/receiver.cpp -lsodium -lisal -o /tmp/seeds &&
//   /tmp/seeds fuzz/corpus/fec_input

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <span>
#include <vector>

#include "src/base/bytes.hpp"
#include "src/fec/receiver.hpp"
#include "src/fec/sender.hpp"
#include "src/fec/wire.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

void check(bool ok) {
  if (!ok) std::abort();
}

crypto::Key fuzz_key() {
  crypto::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(0xa5 ^ i);
  return key;
}

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  Bytes take(std::size_t len) {
    len = std::min(len, n);
    Bytes out(p, p + len);  // an exact-size copy, so ASan sees any overread
    p += len;
    n -= len;
    return out;
  }
};

// The packet the Sender numbers as index i: at least 4 bytes, the index first.
Bytes packet_of(std::uint32_t index, std::size_t len, std::uint8_t seed) {
  Bytes p(std::max<std::size_t>(len, 4));
  base::store_be32(p.data(), index);
  for (std::size_t i = 4; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(seed + i * 29);
  return p;
}

struct Run {
  fec::Sender sender;
  fec::Receiver receiver;
  std::size_t max_held;
  double now = 0;
  std::deque<Bytes> wire;
  std::vector<std::pair<std::size_t, std::uint8_t>> sent;  // per index: length, seed
  bool genuine = true;  // only the Sender's datagrams, unmodified, reached the receiver
  fec::Receiver::Deliver deliver;
  fec::Emit emit;

  Run(const fec::SenderOptions& s, const fec::ReceiverOptions& r)
      : sender(fuzz_key(), s), receiver(fuzz_key(), r), max_held(r.max_held) {
    deliver = [this](std::span<const std::uint8_t> packet) { delivered(packet); };
    emit = [this](std::span<const std::uint8_t> d) { wire.emplace_back(d.begin(), d.end()); };
  }

  void delivered(std::span<const std::uint8_t> packet) {
    if (!genuine) return;
    check(packet.size() >= 4);
    std::uint32_t index = base::load_be32(packet.data());
    check(index < sent.size());
    Bytes want = packet_of(index, sent[index].first, sent[index].second);
    check(want.size() == packet.size() &&
          std::memcmp(want.data(), packet.data(), want.size()) == 0);
  }

  void to_receiver(std::span<const std::uint8_t> d) {
    auto kind = fec::wire::kind_of(d);
    if (kind == fec::wire::Kind::parity)
      receiver.on_parity(d, now, deliver);
    else
      receiver.on_data(d, now, deliver);
  }

  void invariants() {
    const auto& st = receiver.stats();
    if (!receiver.next_deadline())
      check(st.lost == static_cast<std::uint32_t>(st.rebuilt + st.unrecovered + st.reordered));
    check(st.held_max <= max_held);
    auto report = fec::wire::parse_report(receiver.report(), fuzz_key());
    check(report && report->received == st.received && report->lost == st.lost &&
          report->rebuilt == st.rebuilt && report->unrecovered == st.unrecovered &&
          report->highest_seq == st.highest_seq);
    if (auto t = receiver.next_deadline()) check(*t == *t);
  }
};

void parse_everything(std::span<const std::uint8_t> d) {
  auto kind = fec::wire::kind_of(d);
  if (auto data = fec::wire::parse_data(d)) {
    check(kind && data->packet.size() + fec::wire::kDataHeader == d.size());
    check(data->packet.data() == d.data() + fec::wire::kDataHeader);
  }
  if (auto parity = fec::wire::parse_parity(d)) {
    check(kind == fec::wire::Kind::parity);
    check(parity->k >= 1 && parity->k <= fec::wire::kMaxData && parity->index < parity->m);
    check(fec::wire::parity_size(parity->symbol.size()) == d.size());
    if (auto packet = fec::wire::symbol_packet(parity->symbol))
      check(packet->size() + fec::wire::kSymbolPrefix <= parity->symbol.size());
  }
  if (auto report = fec::wire::parse_report(d)) {
    check(d.size() == fec::wire::kReportSize);
    // Re-encoded with the key, it verifies; the input itself only if its MAC was made so.
    auto again = fec::wire::encode_report(*report, fuzz_key());
    check(fec::wire::parse_report(again, fuzz_key()) == report);
    bool same = std::memcmp(again.data(), d.data(), d.size()) == 0;
    check(fec::wire::verify(d, fuzz_key()) == same);
  }
  (void)fec::wire::verify(d, fuzz_key());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  if (in.empty()) return 0;
  std::uint8_t config = in.u8();
  static const std::size_t held_choices[] = {1, 7, 100, 4096};
  static const std::size_t block_choices[] = {1, 3, 8, 32};
  fec::ReceiverOptions ro{.hold = 0.001 * (1 + (config >> 6)),
                          .max_held = held_choices[config & 3]};
  fec::SenderOptions so{.max_data = block_choices[(config >> 2) & 3],
                        .max_block_age = 0.002,
                        .first_seq = (config & 0x10) ? 0xfffffff0u : 1000u};
  Run run(so, ro);
  run.sender.set_redundancy((config & 0x20) ? 0.25 : 0.5);

  while (!in.empty()) {
    std::uint8_t op = in.u8();
    switch (op & 7) {
      case 0: {
        Bytes d = in.take(in.u8());
        // Frequently a well-formed header: the fuzzer finds numbers faster than the magic.
        if ((op & 8) && d.size() >= 4) d[0] = d[1] = 0, d[2] = fec::wire::kMarker, d[3] = 1;
        run.genuine = false;
        run.receiver.on_data(d, run.now, run.deliver);
        break;
      }
      case 1: {
        std::size_t len = std::size_t{in.u8()} << 8;
        len |= in.u8();
        Bytes d = in.take(len);
        run.genuine = false;
        run.receiver.on_parity(d, run.now, run.deliver);
        break;
      }
      case 2:
        parse_everything(in.take(in.u8()));
        break;
      case 3: {
        std::size_t len = std::size_t{in.u8()} * ((op & 8) ? 6 : 1);
        std::uint8_t seed = in.u8();
        auto index = static_cast<std::uint32_t>(run.sent.size());
        run.sent.emplace_back(len, seed);
        Bytes packet = packet_of(index, len, seed);
        std::uint8_t header[fec::wire::kDataHeader];
        std::vector<Bytes> parity;
        run.sender.add(packet, header, run.now, [&](std::span<const std::uint8_t> d) {
          parity.emplace_back(d.begin(), d.end());
        });
        Bytes d(header, header + fec::wire::kDataHeader);
        d.insert(d.end(), packet.begin(), packet.end());
        run.wire.push_back(std::move(d));
        for (Bytes& p : parity) run.wire.push_back(std::move(p));
        break;
      }
      case 4:
        if (!run.wire.empty()) {
          Bytes d = std::move(run.wire.front());
          run.wire.pop_front();
          run.to_receiver(d);
        }
        break;
      case 5:
        if (!run.wire.empty()) run.wire.pop_front();
        break;
      case 6: {
        std::uint8_t how = in.u8(), at = in.u8(), value = in.u8();
        if (run.wire.empty()) break;
        std::size_t i = at % run.wire.size();
        switch (how % 4) {
          case 0:  // reorder
            std::swap(run.wire.front(), run.wire[i]);
            break;
          case 1:  // duplicate
            run.wire.push_back(run.wire[i]);
            break;
          case 2: {  // corrupt a byte
            Bytes& d = run.wire[i];
            if (!d.empty()) {
              d[(std::size_t{value} * 7 + how) % d.size()] ^=
                  static_cast<std::uint8_t>(1 + (how >> 2));
              run.genuine = false;
            }
            break;
          }
          case 3:  // lose a datagram in the middle
            run.wire.erase(run.wire.begin() + static_cast<std::ptrdiff_t>(i));
            break;
        }
        break;
      }
      case 7: {
        std::uint8_t dt = in.u8(), r = in.u8();
        // Time mostly goes forward, in steps around the hold time; sometimes it jumps back.
        if ((op & 0x18) == 0x18)
          run.now -= 0.0001 * dt;
        else
          run.now += 0.0001 * dt;
        run.sender.flush(run.now, op & 0x20, run.emit);
        run.receiver.on_timer(run.now, run.deliver);
        if (op & 0x40) run.sender.set_redundancy(r / 255.0);
        break;
      }
    }
    run.invariants();
  }
  // Everything left on the wire arrives, then every hold ends.
  run.sender.flush(run.now, true, run.emit);
  while (!run.wire.empty()) {
    Bytes d = std::move(run.wire.front());
    run.wire.pop_front();
    run.to_receiver(d);
  }
  run.receiver.on_timer(run.now + 1e6, run.deliver);
  check(!run.receiver.next_deadline());
  run.invariants();
  return 0;
}

#ifdef FEC_FUZZ_SEEDS
// Writes the seed corpus: operation sequences of a few typical kinds.
#include <cstdio>
#include <string>

namespace {

void write(const std::string& dir, const std::string& name, const Bytes& b) {
  LLVMFuzzerTestOneInput(b.data(), b.size());  // a seed must pass itself
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  check(f != nullptr);
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

// SEND of n packets of about 100 bytes, each followed by DELIVER (or DROP where lose(i)) of its
// datagram and of the parity it completed, with time steps.
Bytes stream(std::uint8_t config, int n, bool (*lose)(int)) {
  static const int block_choices[] = {1, 3, 8, 32};
  int k = block_choices[(config >> 2) & 3];
  int m = (k * ((config & 0x20) ? 1 : 2) + 3) / 4;  // ceil(k * r), r = 0.25 or 0.5
  Bytes b = {config};
  for (int i = 0; i < n; ++i) {
    b.insert(b.end(), {3, static_cast<std::uint8_t>(90 + i % 40), static_cast<std::uint8_t>(i)});
    b.push_back(lose(i) ? 5 : 4);
    if (i % k == k - 1)
      for (int p = 0; p < m; ++p) b.push_back(4);
    if (i % 5 == 4) b.insert(b.end(), {7, 3, 0});
  }
  b.insert(b.end(), {7 | 0x20, 100, 0});
  for (int i = 0; i < 20; ++i) b.push_back(4);
  b.insert(b.end(), {7, 100, 0});
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  check(argc == 2);
  std::string dir = argv[1];
  write(dir, "clean", stream(0x02, 40, [](int) { return false; }));
  write(dir, "random_loss", stream(0x0a, 60, [](int i) { return i % 7 == 3; }));
  write(dir, "burst_loss", stream(0x0e, 80, [](int i) { return i >= 20 && i < 24; }));
  write(dir, "wrap_small_held", stream(0x10 | 0x04 | 0x01, 50, [](int i) { return i % 3 == 1; }));
  // Reordering, duplicates and a corrupted parity.
  Bytes mess = stream(0x0a, 30, [](int i) { return i % 9 == 4; });
  for (int i = 0; i < 6; ++i) mess.insert(mess.begin() + 20 + 9 * i, {6, std::uint8_t(i), 3, 9});
  write(dir, "mess", mess);
  // Valid datagrams of the fuzz key, fed raw (so mutations start from well-formed ones).
  fec::Sender sender(fuzz_key(), {.max_data = 4, .max_block_age = 1, .first_seq = 77});
  sender.set_redundancy(0.5);
  Bytes raw = {0x01};
  std::vector<Bytes> parity;
  for (std::uint32_t i = 0; i < 4; ++i) {
    Bytes packet = packet_of(i, 40, 1);
    std::uint8_t header[fec::wire::kDataHeader];
    sender.add(packet, header, 0,
               [&](std::span<const std::uint8_t> d) { parity.emplace_back(d.begin(), d.end()); });
    if (i == 2) continue;  // lost: the parity rebuilds it
    raw.insert(raw.end(), {0, static_cast<std::uint8_t>(fec::wire::kDataHeader + 40)});
    raw.insert(raw.end(), header, header + fec::wire::kDataHeader);
    raw.insert(raw.end(), packet.begin(), packet.end());
  }
  for (const Bytes& p : parity) {
    raw.insert(raw.end(),
               {1, static_cast<std::uint8_t>(p.size() >> 8), static_cast<std::uint8_t>(p.size())});
    raw.insert(raw.end(), p.begin(), p.end());
  }
  auto report = fec::wire::encode_report({81, 3, 1, 1, 0}, fuzz_key());
  raw.insert(raw.end(), {2, static_cast<std::uint8_t>(report.size())});
  raw.insert(raw.end(), report.begin(), report.end());
  raw.insert(raw.end(), {2, static_cast<std::uint8_t>(parity[0].size())});
  raw.insert(raw.end(), parity[0].begin(), parity[0].end());
  write(dir, "raw_valid", raw);
  return 0;
}
#endif
