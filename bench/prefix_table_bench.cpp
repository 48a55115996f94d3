// Benchmark: policy::PrefixTable longest-prefix match against a linear scan of the same rules.
//
// 10,000 random IPv4 rules (lengths 8..32) and, separately, 10,000 random IPv6 rules (lengths
// 16..128). Each family is probed with two address streams: uniformly random addresses, and
// addresses drawn from inside a random rule (so most lookups walk deep and hit). The linear
// scan is sorted longest-first and stops at the first match, i.e. the best a linear scan can do;
// it gets far fewer lookups because it is slow. Both answers are cross-checked on the shared
// addresses, and a checksum of the results is printed so the work cannot be optimised away.
//
// Usage: prefix_table_bench [trie lookups per stream, default 20000000]

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "policy/prefix_table.hpp"

// Count heap allocations to show that lookups make none. Every form that pairs with free() is
// replaced, so that sanitizer builds see matching allocation and deallocation functions.
namespace {
std::size_t g_allocations = 0;
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new(std::size_t size) {
  if (void* p = operator new(size, std::nothrow)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  return operator new(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return operator new(size, std::nothrow);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace {

constexpr std::size_t kRules = 10'000;
constexpr std::size_t kAddresses = 1 << 20;  // distinct probe addresses per stream, reused
constexpr std::size_t kLinearLookups = 20'000;

using Addr = std::array<std::uint8_t, 16>;
using Clock = std::chrono::steady_clock;

// The linear-scan baseline over W 64-bit words (1 for IPv4, 2 for IPv6).
template <std::size_t W>
class LinearTable {
 public:
  void add(const policy::Prefix& prefix, std::uint32_t value) {
    Entry entry{words(prefix.bytes().data()), {}, prefix.length(), value};
    for (std::size_t i = 0; i < W; ++i) {
      const unsigned start = 64 * static_cast<unsigned>(i);
      const unsigned bits = std::min(64u, prefix.length() > start ? prefix.length() - start : 0u);
      entry.mask[i] = bits == 0 ? 0 : ~std::uint64_t{0} << (64 - bits);
    }
    entries_.push_back(entry);
  }
  // Longest prefix first, so the first match is the longest match.
  void finish() {
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const Entry& a, const Entry& b) { return a.len > b.len; });
  }
  std::uint32_t lookup(const std::uint8_t* addr) const {
    const std::array<std::uint64_t, W> key = words(addr);
    for (const Entry& entry : entries_) {
      bool match = true;
      for (std::size_t i = 0; i < W; ++i) match &= (key[i] & entry.mask[i]) == entry.net[i];
      if (match) return entry.value;
    }
    return 0;
  }

 private:
  struct Entry {
    std::array<std::uint64_t, W> net, mask;
    unsigned len;
    std::uint32_t value;
  };
  // IPv4 goes in the top 32 bits of the single word.
  static std::array<std::uint64_t, W> words(const std::uint8_t* addr) {
    std::array<std::uint64_t, W> out{};
    const std::size_t bytes = W == 1 ? 4 : 16;
    for (std::size_t i = 0; i < bytes; ++i)
      out[i / 8] |= std::uint64_t{addr[i]} << (56 - 8 * (i % 8));
    return out;
  }
  std::vector<Entry> entries_;
};

double mega_per_second(std::size_t lookups, Clock::duration elapsed) {
  return static_cast<double>(lookups) / std::chrono::duration<double>(elapsed).count() / 1e6;
}

template <int Family>
void run(std::mt19937_64& rng, unsigned min_len, std::size_t trie_lookups, bool& ok) {
  constexpr std::size_t kBytes = Family == 4 ? 4 : 16;
  constexpr unsigned kMaxLen = Family == 4 ? 32 : 128;
  auto random_addr = [&rng] {
    Addr addr{};
    for (std::size_t i = 0; i < kBytes; ++i) addr[i] = static_cast<std::uint8_t>(rng());
    return addr;
  };

  // Rules: value = index + 1 (0 means "no match"); a repeated prefix replaces the earlier one.
  policy::PrefixTable<std::uint32_t> table;
  std::vector<policy::Prefix> rules;
  std::uniform_int_distribution<unsigned> length(min_len, kMaxLen);
  for (std::size_t i = 0; i < kRules; ++i) {
    const Addr addr = random_addr();
    rules.push_back(*policy::Prefix::from_bytes(Family, addr.data(), length(rng)));
    table.insert(rules.back(), static_cast<std::uint32_t>(i + 1));
  }
  LinearTable<Family == 4 ? 1 : 2> linear;
  table.for_each([&](const policy::Prefix& p, std::uint32_t value) { linear.add(p, value); });
  linear.finish();

  // Probe streams.
  std::vector<Addr> uniform(kAddresses), inside(kAddresses);
  for (Addr& addr : uniform) addr = random_addr();
  std::uniform_int_distribution<std::size_t> pick(0, rules.size() - 1);
  for (Addr& addr : inside) {
    const policy::Prefix& rule = rules[pick(rng)];
    const Addr host = random_addr();
    for (unsigned bit = 0; bit < kMaxLen; ++bit) {
      const auto& src = bit < rule.length() ? rule.bytes() : host;
      const std::uint8_t m = static_cast<std::uint8_t>(0x80 >> (bit % 8));
      addr[bit / 8] = static_cast<std::uint8_t>((addr[bit / 8] & ~m) | (src[bit / 8] & m));
    }
  }

  for (const auto& [name, addrs] :
       {std::pair{"uniform", &uniform}, std::pair{"in-rule", &inside}}) {
    const std::vector<Addr>& probe = *addrs;

    const std::size_t allocations_before = g_allocations;
    std::uint64_t trie_sum = 0, hits = 0;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < trie_lookups; ++i) {
      const std::uint32_t* v = table.lookup(Family, probe[i % kAddresses].data());
      trie_sum += v ? *v : 0;
      hits += v != nullptr;
    }
    const auto t1 = Clock::now();
    const std::size_t trie_allocations = g_allocations - allocations_before;

    std::uint64_t linear_sum = 0;
    const auto t2 = Clock::now();
    for (std::size_t i = 0; i < kLinearLookups; ++i) linear_sum += linear.lookup(probe[i].data());
    const auto t3 = Clock::now();

    // Same addresses through the trie (untimed) must give the same answers.
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < kLinearLookups; ++i) {
      const std::uint32_t* v = table.lookup(Family, probe[i].data());
      mismatches += (v ? *v : 0) != linear.lookup(probe[i].data());
    }

    const double trie_rate = mega_per_second(trie_lookups, t1 - t0);
    const double linear_rate = mega_per_second(kLinearLookups, t3 - t2);
    std::printf(
        "v%d %-8s trie: %6.1f M lookups/s   linear: %6.4f M lookups/s   ratio: %7.0fx   "
        "(hits %5.1f%%, allocs %zu, checksum %llx/%llx)\n",
        Family, name, trie_rate, linear_rate, trie_rate / linear_rate,
        100.0 * static_cast<double>(hits) / static_cast<double>(trie_lookups), trie_allocations,
        static_cast<unsigned long long>(trie_sum), static_cast<unsigned long long>(linear_sum));
    if (mismatches != 0 || trie_allocations != 0) {
      std::printf("  FAILED: %zu trie/linear mismatches, %zu allocations during lookups\n",
                  mismatches, trie_allocations);
      ok = false;
    }
  }
  std::printf("v%d: %zu distinct rules\n", Family, table.size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t trie_lookups = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20'000'000;
  std::mt19937_64 rng(20240601);
  bool ok = true;
  run<4>(rng, 8, trie_lookups, ok);
  run<6>(rng, 16, trie_lookups, ok);
  return ok ? 0 : 1;
}
