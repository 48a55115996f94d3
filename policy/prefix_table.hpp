#pragma once
// PrefixTable<Value>: a longest-prefix-match table for IPv4 and IPv6 in the spirit of WireGuard's
// allowedips. Header-only and self-contained: no configuration, logging or I/O.
//
// Each family has its own path-compressed binary trie (a PATRICIA/crit-bit trie, as allowedips
// uses). A node holds a masked key and its prefix length; the bit just past that length picks the
// child. Nodes without a value exist only where two subtrees fork, so there are fewer than
// 2 * size() nodes. A root table indexed by the first 12 address bits caches where a walk from
// the root is after those bits, so a lookup starts a dozen levels down (about 50 M lookups/s with
// 10,000 random IPv4 prefixes on one core; see bench/prefix_table_bench.cpp). Nodes live in a
// vector arena addressed by 32-bit indices, freed slots are recycled, and tables are copyable.
// Memory per node: 16 (IPv4) or 32 (IPv6) bytes plus a std::optional<Value> slot; and a 32 KiB
// root table per family, allocated by its first insert (and released by clear()). Lookups never
// allocate. The trie and its keys are in prefix_trie.hpp.
//
// Pointers returned by lookup*() and find_exact() stay valid until the next insert, remove or
// clear on the same table (like iterators of a std::vector).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "policy/prefix_trie.hpp"

namespace policy {

// An IPv4 or IPv6 network prefix. Invariant: family() is 4 or 6, length() <= max_length(), and
// every address bit past length() is zero (host bits are masked off on construction, so
// "10.1.2.3/16" and "10.1.0.0/16" are the same Prefix). IPv4 uses bytes()[0..3]; the rest is zero.
class Prefix {
 public:
  Prefix() = default;  // 0.0.0.0/0

  // `addr` holds 4 (family 4) or 16 (family 6) bytes in network order. Host bits beyond `length`
  // are masked off. nullopt if the family is not 4/6 or the length exceeds 32/128.
  static std::optional<Prefix> from_bytes(int family, const std::uint8_t* addr, unsigned length);

  // "10.2.0.0/16", "fd02::/64", "::ffff:10.0.0.1/128"; a bare address means /32 or /128. Host
  // bits beyond the length are masked off ("10.2.3.4/16" parses as 10.2.0.0/16). Rejects
  // anything else: whitespace, IPv4 octets with leading zeros or fewer than four parts, zone ids,
  // a missing or out-of-range length after '/'.
  static std::optional<Prefix> parse(std::string_view text);

  int family() const { return family_; }
  unsigned length() const { return length_; }
  unsigned max_length() const { return family_ == 4 ? 32 : 128; }
  const std::array<std::uint8_t, 16>& bytes() const { return addr_; }

  // Always "address/length" (also for host prefixes), IPv6 in RFC 5952 form, e.g. "fd02::/64".
  std::string to_string() const;

  bool operator==(const Prefix&) const = default;

 private:
  std::array<std::uint8_t, 16> addr_{};
  std::uint8_t family_ = 4;
  std::uint8_t length_ = 0;
};

namespace detail {

// Strict dotted quad: exactly four decimal octets, no leading zeros.
inline bool parse_ipv4(std::string_view text, std::uint8_t* out) {
  std::size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
    const std::size_t start = i;
    unsigned value = 0;
    while (i < text.size() && i - start < 3 && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    if (i == start || value > 255 || (i - start > 1 && text[start] == '0')) return false;
    out[part] = static_cast<std::uint8_t>(value);
  }
  return i == text.size();
}

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 4291 text form: up to eight groups of 1-4 hex digits, at most one "::" standing for one or
// more zero groups, optionally ending in a dotted quad for the last 32 bits.
inline bool parse_ipv6(std::string_view text, std::uint8_t* out) {
  std::uint16_t groups[8] = {};
  int count = 0;  // groups parsed
  int gap = -1;   // index in groups[] where "::" stands, if any
  std::size_t i = 0;
  if (text.starts_with("::")) {
    gap = 0;
    i = 2;
  } else if (text.starts_with(':')) {
    return false;
  }
  while (i < text.size()) {
    std::size_t end = text.find(':', i);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view token = text.substr(i, end - i);
    if (token.find('.') != std::string_view::npos) {  // embedded IPv4: last, two groups
      std::uint8_t quad[4];
      if (end != text.size() || count > 6 || !parse_ipv4(token, quad)) return false;
      groups[count++] = static_cast<std::uint16_t>(quad[0] << 8 | quad[1]);
      groups[count++] = static_cast<std::uint16_t>(quad[2] << 8 | quad[3]);
      break;
    }
    if (token.empty() || token.size() > 4 || count == 8) return false;
    unsigned value = 0;
    for (const char c : token) {
      const int digit = hex_digit(c);
      if (digit < 0) return false;
      value = value << 4 | static_cast<unsigned>(digit);
    }
    groups[count++] = static_cast<std::uint16_t>(value);
    if (end == text.size()) break;
    if (end + 1 < text.size() && text[end + 1] == ':') {
      if (gap >= 0) return false;
      gap = count;
      i = end + 2;
    } else {
      i = end + 1;
      if (i == text.size()) return false;  // trailing single ':'
    }
  }
  if (gap < 0 ? count != 8 : count > 7) return false;

  std::uint16_t full[8] = {};
  const int head = gap < 0 ? count : gap;
  std::copy(groups, groups + head, full);
  std::copy(groups + head, groups + count, full + 8 - (count - head));
  for (int g = 0; g < 8; ++g) {
    out[2 * g] = static_cast<std::uint8_t>(full[g] >> 8);
    out[2 * g + 1] = static_cast<std::uint8_t>(full[g]);
  }
  return true;
}

inline void append_ipv4(std::string& out, const std::uint8_t* addr) {
  for (int i = 0; i < 4; ++i) {
    if (i > 0) out += '.';
    out += std::to_string(addr[i]);
  }
}

// RFC 5952: lowercase, no leading zeros, the longest run (first on ties) of two or more zero
// groups as "::", IPv4-mapped addresses as ::ffff:a.b.c.d.
inline void append_ipv6(std::string& out, const std::uint8_t* addr) {
  std::uint16_t groups[8];
  for (int g = 0; g < 8; ++g)
    groups[g] = static_cast<std::uint16_t>(addr[2 * g] << 8 | addr[2 * g + 1]);
  if (std::all_of(groups, groups + 5, [](std::uint16_t g) { return g == 0; }) &&
      groups[5] == 0xffff) {
    out += "::ffff:";
    append_ipv4(out, addr + 12);
    return;
  }
  int best_start = -1, best_len = 1;  // runs of one zero group are not compressed
  for (int g = 0; g < 8;) {
    if (groups[g] != 0) {
      ++g;
      continue;
    }
    int end = g;
    while (end < 8 && groups[end] == 0) ++end;
    if (end - g > best_len) {
      best_start = g;
      best_len = end - g;
    }
    g = end;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int g = 0; g < 8; ++g) {
    if (g == best_start) {
      out += "::";
      g += best_len - 1;
      continue;
    }
    if (g > 0 && g != best_start + best_len) out += ':';
    bool leading = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned nibble = groups[g] >> shift & 0xf;
      if (leading && nibble == 0 && shift > 0) continue;
      leading = false;
      out += kHex[nibble];
    }
  }
}

}  // namespace detail

inline std::optional<Prefix> Prefix::from_bytes(int family, const std::uint8_t* addr,
                                                unsigned length) {
  if (family != 4 && family != 6) return std::nullopt;
  const unsigned addr_len = family == 4 ? 4 : 16;
  if (length > addr_len * 8) return std::nullopt;
  Prefix prefix;
  prefix.family_ = static_cast<std::uint8_t>(family);
  prefix.length_ = static_cast<std::uint8_t>(length);
  for (unsigned i = 0; i < addr_len; ++i) {
    const unsigned kept = length > 8 * i ? length - 8 * i : 0;  // bits of this byte to keep
    const unsigned mask = kept >= 8 ? 0xff : (0xff00u >> kept) & 0xff;
    prefix.addr_[i] = static_cast<std::uint8_t>(addr[i] & mask);
  }
  return prefix;
}

inline std::optional<Prefix> Prefix::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  const int family = address.find(':') != std::string_view::npos ? 6 : 4;
  std::uint8_t bytes[16] = {};
  if (!(family == 4 ? detail::parse_ipv4(address, bytes) : detail::parse_ipv6(address, bytes))) {
    return std::nullopt;
  }
  unsigned length = family == 4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    length = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      length = length * 10 + static_cast<unsigned>(c - '0');
    }
  }
  return from_bytes(family, bytes, length);  // rejects a length beyond 32/128
}

inline std::string Prefix::to_string() const {
  std::string out;
  if (family_ == 4) {
    detail::append_ipv4(out, addr_.data());
  } else {
    detail::append_ipv6(out, addr_.data());
  }
  out += '/';
  out += std::to_string(length_);
  return out;
}

template <class Value>
class PrefixTable {
 public:
  // Adds `prefix` -> `value`, replacing the value if the identical prefix is already present.
  void insert(const Prefix& prefix, Value value) {
    if (prefix.family() == 4) {
      v4_.insert(key4(prefix), prefix.length(), std::move(value));
    } else {
      v6_.insert(key6(prefix), prefix.length(), std::move(value));
    }
  }

  // Removes exactly `prefix` (not the more specific prefixes below it). False if it was absent.
  bool remove(const Prefix& prefix) {
    return prefix.family() == 4 ? v4_.remove(key4(prefix), prefix.length())
                                : v6_.remove(key6(prefix), prefix.length());
  }

  // The value stored for exactly `prefix`, or nullptr.
  const Value* find_exact(const Prefix& prefix) const {
    return prefix.family() == 4 ? v4_.find_exact(key4(prefix), prefix.length())
                                : v6_.find_exact(key6(prefix), prefix.length());
  }

  // The value of the longest prefix containing the address (network byte order), or nullptr.
  const Value* lookup_v4(const std::uint8_t addr[4]) const {
    return v4_.lookup(detail::Key4::load(addr));
  }
  const Value* lookup_v6(const std::uint8_t addr[16]) const {
    return v6_.lookup(detail::Key6::load(addr));
  }
  // `family` is 4 or 6 (anything else finds nothing); `addr` holds 4 or 16 bytes accordingly.
  const Value* lookup(int family, const std::uint8_t* addr) const {
    if (family == 4) return lookup_v4(addr);
    if (family == 6) return lookup_v6(addr);
    return nullptr;
  }

  std::size_t size() const { return v4_.size() + v6_.size(); }
  bool empty() const { return size() == 0; }
  void clear() {
    v4_.clear();
    v6_.clear();
  }

  // Calls f(const Prefix&, const Value&) for every entry: IPv4 first, then IPv6, each ordered by
  // (address, length). The table must not be modified from inside f.
  template <class F>
  void for_each(F&& f) const {
    auto emit4 = [&f](const detail::Key4& key, unsigned len, const Value& value) {
      emit(f, 4, key, len, value);
    };
    auto emit6 = [&f](const detail::Key6& key, unsigned len, const Value& value) {
      emit(f, 6, key, len, value);
    };
    v4_.for_each(emit4);
    v6_.for_each(emit6);
  }

 private:
  static detail::Key4 key4(const Prefix& prefix) {
    return detail::Key4::load(prefix.bytes().data());
  }
  static detail::Key6 key6(const Prefix& prefix) {
    return detail::Key6::load(prefix.bytes().data());
  }

  template <class F, class K>
  static void emit(F& f, int family, const K& key, unsigned len, const Value& value) {
    std::uint8_t bytes[16] = {};
    key.store(bytes);
    f(*Prefix::from_bytes(family, bytes, len), value);
  }

  detail::Trie<detail::Key4, Value> v4_;
  detail::Trie<detail::Key6, Value> v6_;
};

}  // namespace policy
