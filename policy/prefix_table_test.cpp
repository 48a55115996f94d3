#include "policy/prefix_table.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using policy::Prefix;
using policy::PrefixTable;
using Addr = std::array<std::uint8_t, 16>;

Prefix P(const char* text) {
  const std::optional<Prefix> prefix = Prefix::parse(text);
  REQUIRE_MESSAGE(prefix.has_value(), text);
  return *prefix;
}

Addr A(const char* text) {
  return P(text).bytes();
}

template <class Value>
const Value* lookup(const PrefixTable<Value>& table, const char* address) {
  const Prefix p = P(address);
  return table.lookup(p.family(), p.bytes().data());
}

template <class Value>
std::optional<Value> value_at(const PrefixTable<Value>& table, const char* address) {
  const Value* v = lookup(table, address);
  return v ? std::optional<Value>(*v) : std::nullopt;
}

// Bit i (from the most significant) of an address.
bool bit(const Addr& addr, unsigned i) {
  return (addr[i / 8] >> (7 - i % 8)) & 1;
}

// The naive reference: a list of distinct prefixes, longest match wins.
class Oracle {
 public:
  void insert(const Prefix& prefix, int value) {
    for (auto& [p, v] : entries_) {
      if (p == prefix) {
        v = value;
        return;
      }
    }
    entries_.emplace_back(prefix, value);
  }
  bool remove(const Prefix& prefix) {
    const auto it = std::find_if(entries_.begin(), entries_.end(),
                                 [&](const auto& entry) { return entry.first == prefix; });
    if (it == entries_.end()) return false;
    entries_.erase(it);
    return true;
  }
  std::optional<int> lookup(int family, const Addr& addr) const {
    std::optional<int> best;
    int best_len = -1;
    for (const auto& [p, v] : entries_) {
      if (p.family() != family || static_cast<int>(p.length()) <= best_len) continue;
      bool match = true;
      for (unsigned i = 0; i < p.length() && match; ++i) match = bit(addr, i) == bit(p.bytes(), i);
      if (match) {
        best = v;
        best_len = static_cast<int>(p.length());
      }
    }
    return best;
  }
  const std::vector<std::pair<Prefix, int>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Prefix, int>> entries_;
};

// Random prefixes and addresses for one family. Prefixes are drawn around a handful of cluster
// addresses so that plenty of them nest and overlap, with lengths over the whole range.
class Generator {
 public:
  Generator(int family, std::uint64_t seed) : family_(family), rng_(seed) {
    for (int i = 0; i < 6; ++i) clusters_.push_back(random_addr());
  }

  unsigned max_len() const { return family_ == 4 ? 32 : 128; }

  Addr random_addr() {
    Addr addr{};
    for (unsigned i = 0; i < max_len() / 8; ++i) addr[i] = static_cast<std::uint8_t>(rng_());
    return addr;
  }

  // `from`'s first `keep` bits followed by random bits.
  Addr splice(const Addr& from, unsigned keep) {
    Addr addr = random_addr();
    for (unsigned i = 0; i < keep; ++i) {
      const std::uint8_t mask = static_cast<std::uint8_t>(0x80 >> (i % 8));
      addr[i / 8] = static_cast<std::uint8_t>((addr[i / 8] & ~mask) | (from[i / 8] & mask));
    }
    return addr;
  }

  Prefix random_prefix() {
    const unsigned len = static_cast<unsigned>(rng_() % (max_len() + 1));
    Addr addr = random_addr();
    if (rng_() % 4 != 0) {  // mostly near a cluster: share a random number of leading bits
      const Addr& cluster = clusters_[rng_() % clusters_.size()];
      addr = splice(cluster, static_cast<unsigned>(rng_() % (max_len() + 1)));
    }
    return *Prefix::from_bytes(family_, addr.data(), len);
  }

  // An address inside `prefix`, sometimes with the bit right after the prefix flipped.
  Addr inside(const Prefix& prefix) {
    Addr addr = splice(prefix.bytes(), prefix.length());
    if (prefix.length() < max_len() && rng_() % 2 == 0) {
      addr[prefix.length() / 8] ^= static_cast<std::uint8_t>(0x80 >> (prefix.length() % 8));
    }
    return addr;
  }

  // Uniform, near a cluster, or inside one of `prefixes` (the biased, meaningful case).
  Addr probe(const std::vector<std::pair<Prefix, int>>& prefixes) {
    switch (rng_() % 4) {
      case 0:
        return random_addr();
      case 1:
        return splice(clusters_[rng_() % clusters_.size()],
                      static_cast<unsigned>(rng_() % max_len()));
      default:
        if (prefixes.empty()) return random_addr();
        return inside(prefixes[rng_() % prefixes.size()].first);
    }
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  int family_;
  std::mt19937_64 rng_;
  std::vector<Addr> clusters_;
};

// Compares every lookup, exact find, size and the full entry list against the oracle. Returns a
// description of the first difference, or "" if there is none.
std::string compare(const PrefixTable<int>& table, const Oracle& oracle, Generator& gen, int family,
                    int probes) {
  const auto& entries = oracle.entries();
  for (int i = 0; i < probes; ++i) {
    const Addr addr = gen.probe(entries);
    const int* got = table.lookup(family, addr.data());
    if (got != (family == 4 ? table.lookup_v4(addr.data()) : table.lookup_v6(addr.data()))) {
      return "lookup_v" + std::to_string(family) + " differs from lookup";
    }
    const std::optional<int> want = oracle.lookup(family, addr);
    if ((got != nullptr) != want.has_value() || (got && *got != *want)) {
      return "lookup " + Prefix::from_bytes(family, addr.data(), gen.max_len())->to_string() +
             ": got " + (got ? std::to_string(*got) : "none") + ", want " +
             (want ? std::to_string(*want) : "none");
    }
  }

  std::size_t count = 0;
  for (const auto& entry : entries) count += entry.first.family() == family;
  if (table.size() != count) return "size " + std::to_string(table.size());

  for (const auto& [prefix, value] : entries) {
    if (prefix.family() != family) continue;
    const int* got = table.find_exact(prefix);
    if (!got || *got != value) return "find_exact " + prefix.to_string();
  }

  std::vector<std::pair<Prefix, int>> listed, wanted;
  table.for_each([&](const Prefix& p, int v) {
    if (p.family() == family) listed.emplace_back(p, v);
  });
  for (const auto& entry : entries) {
    if (entry.first.family() == family) wanted.push_back(entry);
  }
  auto by_address = [](const std::pair<Prefix, int>& a, const std::pair<Prefix, int>& b) {
    return std::pair(a.first.bytes(), a.first.length()) <
           std::pair(b.first.bytes(), b.first.length());
  };
  if (!std::is_sorted(listed.begin(), listed.end(), by_address)) return "for_each order";
  std::sort(wanted.begin(), wanted.end(), by_address);
  if (listed != wanted) return "for_each contents";
  return "";
}

void randomized_against_oracle(int family, std::uint64_t seed) {
  Generator gen(family, seed);
  PrefixTable<int> table;
  Oracle oracle;

  // Thousands of random prefixes; some re-inserted with a new value (replace).
  for (int i = 0; i < 3000; ++i) {
    Prefix prefix = gen.random_prefix();
    if (i % 10 == 0 && !oracle.entries().empty()) {
      prefix = oracle.entries()[gen.rng()() % oracle.entries().size()].first;
    }
    table.insert(prefix, i);
    oracle.insert(prefix, i);
  }
  CHECK(compare(table, oracle, gen, family, 20000) == "");

  // Remove a random half (plus prefixes that are not there), re-check, repeat until empty.
  while (!oracle.entries().empty()) {
    std::vector<Prefix> doomed;
    for (const auto& entry : oracle.entries()) {
      if (gen.rng()() % 2 == 0) doomed.push_back(entry.first);
    }
    for (int i = 0; i < 50; ++i) doomed.push_back(gen.random_prefix());
    std::shuffle(doomed.begin(), doomed.end(), gen.rng());
    for (const Prefix& prefix : doomed) {
      const bool expected = oracle.remove(prefix);
      REQUIRE(table.remove(prefix) == expected);
    }
    CHECK(compare(table, oracle, gen, family, 5000) == "");
    if (oracle.entries().size() < 20) {  // finish off
      for (auto entries = oracle.entries(); const auto& entry : entries) {
        REQUIRE(table.remove(entry.first));
        oracle.remove(entry.first);
      }
    }
  }
  CHECK(table.size() == 0);
  CHECK(compare(table, oracle, gen, family, 1000) == "");

  // Usable again after becoming empty.
  const Prefix prefix = gen.random_prefix();
  table.insert(prefix, 7);
  oracle.insert(prefix, 7);
  CHECK(compare(table, oracle, gen, family, 1000) == "");
}

}  // namespace

TEST_CASE("Prefix::parse accepts addresses and prefixes") {
  const Prefix v4 = P("10.2.0.0/16");
  CHECK(v4.family() == 4);
  CHECK(v4.length() == 16);
  CHECK(v4.max_length() == 32);
  CHECK(v4.bytes() == Addr{10, 2});
  CHECK(v4.to_string() == "10.2.0.0/16");

  const Prefix v6 = P("fd02::/64");
  CHECK(v6.family() == 6);
  CHECK(v6.length() == 64);
  CHECK(v6.max_length() == 128);
  CHECK(v6.bytes() == Addr{0xfd, 0x02});
  CHECK(v6.to_string() == "fd02::/64");

  // A bare address is a host prefix.
  CHECK(P("192.168.1.7").length() == 32);
  CHECK(P("192.168.1.7").to_string() == "192.168.1.7/32");
  CHECK(P("::1").length() == 128);
  CHECK(P("::1").to_string() == "::1/128");
  CHECK(P("0.0.0.0/0") == Prefix{});
  CHECK(P("::/0").to_string() == "::/0");
  CHECK(P("255.255.255.255/32").to_string() == "255.255.255.255/32");

  // Host bits beyond the length are masked off.
  CHECK(P("10.2.3.4/16") == P("10.2.0.0/16"));
  CHECK(P("10.2.3.4/16").to_string() == "10.2.0.0/16");
  CHECK(P("10.255.255.255/9").to_string() == "10.128.0.0/9");
  CHECK(P("fd02::1/64").to_string() == "fd02::/64");
  CHECK(P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/17").to_string() == "ffff:8000::/17");
  CHECK(P("1.2.3.4/0") == P("0.0.0.0/0"));

  // IPv6 spellings.
  CHECK(P("FD02:0:0:0:0:0:0:1").to_string() == "fd02::1/128");
  CHECK(P("1:2:3:4:5:6:7::").to_string() == "1:2:3:4:5:6:7:0/128");
  CHECK(P("::2:3:4:5:6:7:8").to_string() == "0:2:3:4:5:6:7:8/128");
  CHECK(P("1:0:0:2:0:0:0:3").to_string() == "1:0:0:2::3/128");
  CHECK(P("::ffff:10.0.0.1").to_string() == "::ffff:10.0.0.1/128");
  CHECK(P("1:2:3:4:5:6:1.2.3.4").bytes() == Addr{0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4});
  CHECK(P("2001:db8::/32").bytes() == Addr{0x20, 0x01, 0x0d, 0xb8});

  // Equality covers family and length.
  CHECK(P("10.0.0.0/8") != P("10.0.0.0/9"));
  CHECK(P("0.0.0.0/0") != P("::/0"));
  CHECK(Prefix::from_bytes(4, A("10.1.2.3").data(), 8) == P("10.0.0.0/8"));
  CHECK_FALSE(Prefix::from_bytes(4, A("10.1.2.3").data(), 33));
  CHECK_FALSE(Prefix::from_bytes(5, A("10.1.2.3").data(), 8));
}

TEST_CASE("Prefix::parse rejects malformed text") {
  for (const char* bad : {"10.0.0.0/33",
                          "garbage",
                          "1.2.3",
                          "::/129",
                          "",
                          "/",
                          "/8",
                          "10.0.0.0/",
                          "10.0.0.0/-1",
                          "10.0.0.0/+8",
                          "10.0.0.0/1a",
                          "10.0.0.0/0032",
                          "10.0.0.0/8/8",
                          "10.0.0.256",
                          "1.2.3.4.5",
                          "01.2.3.4",
                          "1.2.3.04",
                          "1..2.3",
                          ".1.2.3",
                          "1.2.3.",
                          " 10.0.0.0",
                          "10.0.0.0 ",
                          "10.0.0.0/8 ",
                          "1.2.3.4:80",
                          ":",
                          ":::",
                          "1:2",
                          "1:2:3:4:5:6:7:8:9",
                          "1::2::3",
                          ":1::",
                          "1::2:",
                          "1:::2",
                          "12345::",
                          "g::",
                          "fe80::1%eth0",
                          "::ffff:1.2.3",
                          "::1.2.3.4.5",
                          "1:2:3:4:5:6:7:1.2.3.4",
                          "1.2.3.4::",
                          "::1.2.3.4:1",
                          "1:2:3:4:5:6:7:8::",
                          "::1:2:3:4:5:6:7:8",
                          "fd02::/",
                          "fd02::/1000"}) {
    CAPTURE(bad);
    CHECK_FALSE(Prefix::parse(bad).has_value());
  }
}

TEST_CASE("Prefix text agrees with inet_pton/inet_ntop") {
  std::mt19937_64 rng(12345);
  // Formatting and reparsing random IPv6 addresses, many with runs of zero groups.
  for (int i = 0; i < 20000; ++i) {
    Addr addr{};
    for (int g = 0; g < 8; ++g) {
      if (rng() % 2) continue;  // leave zero
      const std::uint16_t group = static_cast<std::uint16_t>(rng() % 3 == 0 ? rng() % 16 : rng());
      addr[2 * g] = static_cast<std::uint8_t>(group >> 8);
      addr[2 * g + 1] = static_cast<std::uint8_t>(group);
    }
    const Prefix prefix = *Prefix::from_bytes(6, addr.data(), 128);
    const std::string text = prefix.to_string();
    char expected[INET6_ADDRSTRLEN];
    REQUIRE(inet_ntop(AF_INET6, addr.data(), expected, sizeof expected));
    // glibc prints ::a.b.c.d for the deprecated IPv4-compatible form; we do not.
    const bool ipv4_compatible =
        std::all_of(addr.begin(), addr.begin() + 12, [](auto b) { return b == 0; });
    if (!ipv4_compatible) CHECK(text == std::string(expected) + "/128");
    CHECK(Prefix::parse(text) == prefix);
    CHECK(Prefix::parse(expected) == prefix);
  }

  // Random strings over the address alphabet: accepted exactly when inet_pton accepts them.
  const std::string alphabet = "0123456789abcdefABCDEF:.:.::0";
  const std::vector<std::string> tokens = {"::",  ":",   ".",    "0",     "1", "00",
                                           "255", "256", "ffff", "fffff", "a", "1.2.3.4",
                                           "10",  "01",  "::1",  "0:0"};
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string text;
    const int pieces = static_cast<int>(rng() % 12);
    for (int p = 0; p < pieces; ++p) {
      if (rng() % 2) {
        text += tokens[rng() % tokens.size()];
      } else {
        text += alphabet[rng() % alphabet.size()];
      }
    }
    std::uint8_t expected[16] = {};
    const bool has_colon = text.find(':') != std::string::npos;
    const bool valid = inet_pton(has_colon ? AF_INET6 : AF_INET, text.c_str(), expected) == 1;
    const std::optional<Prefix> parsed = Prefix::parse(text);
    CAPTURE(text);
    REQUIRE(parsed.has_value() == valid);
    if (valid) {
      ++accepted;
      CHECK(std::equal(expected, expected + (has_colon ? 16 : 4), parsed->bytes().begin()));
      CHECK(parsed->length() == (has_colon ? 128u : 32u));
    }
  }
  CHECK(accepted > 1000);  // the comparison saw plenty of valid addresses
}

TEST_CASE("PrefixTable: empty table, /0 and host routes") {
  PrefixTable<int> table;
  CHECK(table.size() == 0);
  CHECK(table.empty());
  CHECK(lookup(table, "10.0.0.1") == nullptr);
  CHECK(lookup(table, "::1") == nullptr);
  CHECK(table.lookup(5, A("10.0.0.1").data()) == nullptr);
  CHECK_FALSE(table.remove(P("10.0.0.0/8")));
  CHECK(table.find_exact(P("0.0.0.0/0")) == nullptr);

  table.insert(P("0.0.0.0/0"), 1);
  CHECK(value_at(table, "0.0.0.0") == 1);
  CHECK(value_at(table, "255.255.255.255") == 1);
  CHECK(value_at(table, "123.45.67.89") == 1);
  CHECK(lookup(table, "::") == nullptr);  // families are separate

  table.insert(P("::/0"), 2);
  CHECK(value_at(table, "::") == 2);
  CHECK(value_at(table, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == 2);
  CHECK(value_at(table, "1.2.3.4") == 1);

  table.insert(P("10.1.2.3/32"), 3);
  table.insert(P("10.1.2.2/32"), 4);
  CHECK(value_at(table, "10.1.2.3") == 3);
  CHECK(value_at(table, "10.1.2.2") == 4);
  CHECK(value_at(table, "10.1.2.1") == 1);
  CHECK(value_at(table, "10.1.2.4") == 1);

  table.insert(P("2001:db8::1/128"), 5);
  CHECK(value_at(table, "2001:db8::1") == 5);
  CHECK(value_at(table, "2001:db8::") == 2);
  CHECK(value_at(table, "2001:db8::3") == 2);
  CHECK(table.size() == 5);

  const std::uint8_t v4[4] = {10, 1, 2, 3};
  REQUIRE(table.lookup_v4(v4) != nullptr);
  CHECK(*table.lookup_v4(v4) == 3);
  const Addr v6 = A("2001:db8::1");
  REQUIRE(table.lookup_v6(v6.data()) != nullptr);
  CHECK(*table.lookup_v6(v6.data()) == 5);

  CHECK(table.remove(P("0.0.0.0/0")));
  CHECK(lookup(table, "123.45.67.89") == nullptr);
  CHECK(value_at(table, "10.1.2.3") == 3);
  CHECK(table.size() == 4);

  table.clear();
  CHECK(table.size() == 0);
  CHECK(lookup(table, "10.1.2.3") == nullptr);
  CHECK(lookup(table, "2001:db8::1") == nullptr);
  table.insert(P("10.0.0.0/8"), 6);
  CHECK(value_at(table, "10.1.2.3") == 6);
  CHECK(lookup(table, "11.1.2.3") == nullptr);
}

TEST_CASE("PrefixTable: overlapping prefixes, replacement and exact finds") {
  PrefixTable<std::string> table;
  table.insert(P("10.0.0.0/8"), "a");
  table.insert(P("10.1.0.0/16"), "b");
  table.insert(P("10.1.2.0/24"), "c");
  table.insert(P("10.1.2.128/25"), "d");
  table.insert(P("10.1.3.0/24"), "e");
  table.insert(P("10.0.0.0/7"), "f");

  CHECK(value_at(table, "10.1.2.200") == "d");
  CHECK(value_at(table, "10.1.2.100") == "c");
  CHECK(value_at(table, "10.1.3.1") == "e");
  CHECK(value_at(table, "10.1.4.1") == "b");
  CHECK(value_at(table, "10.2.0.1") == "a");
  CHECK(value_at(table, "11.2.0.1") == "f");
  CHECK(lookup(table, "12.0.0.1") == nullptr);
  CHECK(table.size() == 6);

  // Re-inserting a prefix (however it is spelled) replaces its value.
  table.insert(P("10.1.77.77/16"), "B");
  CHECK(table.size() == 6);
  CHECK(value_at(table, "10.1.4.1") == "B");
  REQUIRE(table.find_exact(P("10.1.0.0/16")) != nullptr);
  CHECK(*table.find_exact(P("10.1.0.0/16")) == "B");

  // find_exact does not do longest-prefix matching, and fork points are not entries.
  CHECK(table.find_exact(P("10.1.2.0/23")) == nullptr);
  CHECK(table.find_exact(P("10.1.2.1/32")) == nullptr);
  CHECK(table.find_exact(P("10.0.0.0/9")) == nullptr);
  CHECK_FALSE(table.remove(P("10.1.2.0/23")));  // the internal fork of 10.1.2/24 and 10.1.3/24

  // for_each lists IPv4 then IPv6, each by (address, length).
  table.insert(P("fd00::/8"), "g");
  table.insert(P("::/0"), "h");
  std::vector<std::string> listed;
  table.for_each(
      [&](const Prefix& p, const std::string& v) { listed.push_back(p.to_string() + "=" + v); });
  CHECK(listed == std::vector<std::string>{"10.0.0.0/7=f", "10.0.0.0/8=a", "10.1.0.0/16=B",
                                           "10.1.2.0/24=c", "10.1.2.128/25=d", "10.1.3.0/24=e",
                                           "::/0=h", "fd00::/8=g"});
}

TEST_CASE("PrefixTable: removal") {
  PrefixTable<int> table;
  table.insert(P("10.0.0.0/8"), 1);
  table.insert(P("10.1.0.0/16"), 2);
  table.insert(P("10.1.2.0/24"), 3);
  table.insert(P("10.200.0.0/16"), 4);
  table.insert(P("fd00::/8"), 5);

  SUBCASE("a prefix that has more specific children") {
    CHECK(table.remove(P("10.1.0.0/16")));
    CHECK(table.size() == 4);
    CHECK(value_at(table, "10.1.2.3") == 3);
    CHECK(value_at(table, "10.1.3.3") == 1);
    CHECK(value_at(table, "10.200.3.3") == 4);
    CHECK(table.find_exact(P("10.1.0.0/16")) == nullptr);
    CHECK_FALSE(table.remove(P("10.1.0.0/16")));  // twice

    CHECK(table.remove(P("10.0.0.0/8")));
    CHECK(lookup(table, "10.1.3.3") == nullptr);
    CHECK(value_at(table, "10.1.2.3") == 3);
    CHECK(value_at(table, "10.200.3.3") == 4);
  }
  SUBCASE("prefixes that are not there") {
    CHECK_FALSE(table.remove(P("10.0.0.0/9")));
    CHECK_FALSE(table.remove(P("10.1.2.0/25")));
    CHECK_FALSE(table.remove(P("10.1.2.3/32")));
    CHECK_FALSE(table.remove(P("11.0.0.0/8")));
    CHECK_FALSE(table.remove(P("0.0.0.0/0")));
    CHECK_FALSE(table.remove(P("::/8")));
    CHECK_FALSE(table.remove(P("fd00::/9")));
    CHECK_FALSE(table.remove(P("fd00::/7")));
    CHECK(table.size() == 5);
    CHECK(value_at(table, "10.1.2.3") == 3);
    CHECK(value_at(table, "fd00::1") == 5);
  }
  SUBCASE("leaves first, then everything") {
    CHECK(table.remove(P("10.1.2.0/24")));
    CHECK(value_at(table, "10.1.2.3") == 2);
    CHECK(table.remove(P("10.200.0.0/16")));
    CHECK(value_at(table, "10.200.2.3") == 1);
    CHECK(table.remove(P("10.0.0.0/8")));
    CHECK(table.remove(P("10.1.0.0/16")));
    CHECK(table.remove(P("fd00::/8")));
    CHECK(table.size() == 0);
    CHECK(lookup(table, "10.1.2.3") == nullptr);
    CHECK(lookup(table, "fd00::1") == nullptr);
    int entries = 0;
    table.for_each([&](const Prefix&, int) { ++entries; });
    CHECK(entries == 0);
  }
}

TEST_CASE("PrefixTable: value semantics and move-only values") {
  PrefixTable<int> table;
  table.insert(P("10.0.0.0/8"), 1);
  PrefixTable<int> copy = table;
  table.insert(P("10.1.0.0/16"), 2);
  table.remove(P("10.0.0.0/8"));
  CHECK(value_at(copy, "10.1.2.3") == 1);
  CHECK(value_at(table, "10.1.2.3") == 2);
  CHECK(copy.size() == 1);

  PrefixTable<std::unique_ptr<int>> owners;
  owners.insert(P("fd00::/8"), std::make_unique<int>(42));
  owners.insert(P("fd00::/8"), std::make_unique<int>(43));
  const auto* found = lookup(owners, "fd00::1");
  REQUIRE(found != nullptr);
  CHECK(**found == 43);
  PrefixTable<std::unique_ptr<int>> moved = std::move(owners);
  CHECK(moved.size() == 1);
}

TEST_CASE("PrefixTable: random IPv4 against a linear oracle") {
  randomized_against_oracle(4, 1);
  randomized_against_oracle(4, 2);
}

TEST_CASE("PrefixTable: random IPv6 against a linear oracle") {
  randomized_against_oracle(6, 3);
  randomized_against_oracle(6, 4);
}

TEST_CASE("PrefixTable: interleaved inserts and removes, checked after every step") {
  for (const int family : {4, 6}) {
    CAPTURE(family);
    Generator gen(family, 99 + static_cast<std::uint64_t>(family));
    PrefixTable<int> table;
    Oracle oracle;
    for (int step = 0; step < 3000; ++step) {
      CAPTURE(step);
      if (gen.rng()() % 3 != 0 || oracle.entries().empty()) {
        const Prefix prefix = gen.random_prefix();
        table.insert(prefix, step);
        oracle.insert(prefix, step);
      } else {
        const Prefix prefix = oracle.entries()[gen.rng()() % oracle.entries().size()].first;
        REQUIRE(table.remove(prefix));
        oracle.remove(prefix);
      }
      REQUIRE(compare(table, oracle, gen, family, 30) == "");
    }
  }
}
