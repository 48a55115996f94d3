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
// allocate.
//
// Pointers returned by lookup*() and find_exact() stay valid until the next insert, remove or
// clear on the same table (like iterators of a std::vector).

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

inline constexpr std::uint32_t kNoNode = std::numeric_limits<std::uint32_t>::max();

// A fixed-width big-endian bit string of N words: IPv4 is one uint32, IPv6 two uint64s.
template <class Word, std::size_t N>
struct Key {
  static constexpr unsigned kWordBits = std::numeric_limits<Word>::digits;
  static constexpr unsigned kBits = kWordBits * N;
  static constexpr std::size_t kBytes = kBits / 8;

  std::array<Word, N> words{};

  static Key load(const std::uint8_t* bytes) {
    Key key;
    for (std::size_t i = 0; i < kBytes; ++i) {
      Word& word = key.words[i / sizeof(Word)];
      word = static_cast<Word>(word << 8) | bytes[i];
    }
    return key;
  }
  void store(std::uint8_t* bytes) const {
    for (std::size_t i = 0; i < kBytes; ++i) {
      const unsigned shift = 8 * (sizeof(Word) - 1 - i % sizeof(Word));
      bytes[i] = static_cast<std::uint8_t>(words[i / sizeof(Word)] >> shift);
    }
  }

  // Bit `i` counted from the most significant bit; i < kBits.
  unsigned bit(unsigned i) const {
    return static_cast<unsigned>(words[i / kWordBits] >> (kWordBits - 1 - i % kWordBits)) & 1u;
  }

  // The first n bits (1 <= n < kWordBits) as an integer, and the key made of such bits.
  std::size_t leading(unsigned n) const {
    return static_cast<std::size_t>(words[0] >> (kWordBits - n));
  }
  static Key from_leading(std::size_t value, unsigned n) {
    Key key;
    key.words[0] = static_cast<Word>(static_cast<Word>(value) << (kWordBits - n));
    return key;
  }

  // The first `len` bits, the rest zeroed.
  Key masked(unsigned len) const {
    Key out = *this;
    for (std::size_t i = 0; i < N; ++i) {
      const unsigned start = static_cast<unsigned>(i) * kWordBits;
      if (len <= start) {
        out.words[i] = 0;
      } else if (len - start < kWordBits) {
        out.words[i] &= static_cast<Word>(~(std::numeric_limits<Word>::max() >> (len - start)));
      }
    }
    return out;
  }

  // Number of leading bits `a` and `b` have in common, 0..kBits.
  friend unsigned common_prefix(const Key& a, const Key& b) {
    for (std::size_t i = 0; i < N; ++i) {
      if (const Word diff = a.words[i] ^ b.words[i]) {
        return static_cast<unsigned>(i) * kWordBits + static_cast<unsigned>(std::countl_zero(diff));
      }
    }
    return kBits;
  }

  bool operator==(const Key&) const = default;
};

using Key4 = Key<std::uint32_t, 1>;
using Key6 = Key<std::uint64_t, 2>;

// One family's path-compressed binary trie. Keys passed in must be masked to their length.
//
// A node is a prefix (key, len); its children extend it, the bit at position len choosing the
// side. Nodes without a value exist only where two subtrees fork. On top sits a root table with
// one entry per value of the first kRootBits address bits, caching where a walk from the root
// would be after those bits: the deepest valued node passed so far and the node to continue at.
// It turns the top ~kRootBits levels of a lookup into one array access, at 8 bytes per entry.
template <class K, class Value>
class Trie {
 public:
  static constexpr unsigned kRootBits = 12;

  const Value* lookup(const K& addr) const {
    if (root_ == kNoNode) return nullptr;
    const RootEntry& entry = root_table_[addr.leading(kRootBits)];
    std::uint32_t best = entry.best;
    std::uint32_t idx = entry.start;
    while (idx != kNoNode) {
      const Node& node = nodes_[idx];
      if (common_prefix(addr, node.key) < node.len) break;
      if (node.has_value) best = idx;
      if (node.len == K::kBits) break;
      idx = node.child[addr.bit(node.len)];
    }
    return best == kNoNode ? nullptr : &*values_[best];
  }

  const Value* find_exact(const K& key, unsigned len) const {
    std::uint32_t idx = root_;
    while (idx != kNoNode) {
      const Node& node = nodes_[idx];
      if (node.len > len || common_prefix(key, node.key) < node.len) return nullptr;
      if (node.len == len) return node.has_value ? &*values_[idx] : nullptr;
      idx = node.child[key.bit(node.len)];
    }
    return nullptr;
  }

  void insert(const K& key, unsigned len, Value&& value) {
    if (root_table_.empty()) root_table_.assign(std::size_t{1} << kRootBits, RootEntry{});
    Link link = kRootLink;
    for (;;) {
      const std::uint32_t cur = slot(link);
      if (cur == kNoNode) {  // empty subtree: hang a new leaf here
        const std::uint32_t leaf = new_node(key, len);
        set_value(leaf, std::move(value));
        slot(link) = leaf;
        refresh_root_table(key, len);
        return;
      }
      const K cur_key = nodes_[cur].key;
      const unsigned cur_len = nodes_[cur].len;
      const unsigned common = std::min({common_prefix(key, cur_key), len, cur_len});
      if (common == len && common == cur_len) {  // the same prefix: set or replace its value
        const bool had_value = nodes_[cur].has_value;
        set_value(cur, std::move(value));
        if (!had_value) refresh_root_table(key, len);
        return;
      }
      if (common == cur_len) {  // cur contains the new prefix: descend
        link = {cur, key.bit(cur_len)};
        continue;
      }
      // The new prefix goes above cur: either it contains cur, or the two fork at bit `common`.
      // Allocate first (may reallocate nodes_), then fill in the value, then link it in.
      const std::uint32_t fresh = new_node(key, len);
      std::uint32_t top = fresh;
      if (common == len) {
        nodes_[fresh].child[cur_key.bit(len)] = cur;
      } else {
        top = new_node(key.masked(common), common);
        nodes_[top].child[key.bit(common)] = fresh;
        nodes_[top].child[cur_key.bit(common)] = cur;
      }
      set_value(fresh, std::move(value));
      slot(link) = top;
      refresh_root_table(key, len);
      return;
    }
  }

  bool remove(const K& key, unsigned len) {
    // Find the node, remembering the links walked so empty ancestors can be pruned afterwards.
    std::array<Link, K::kBits + 1> path;
    std::size_t depth = 0;
    Link link = kRootLink;
    for (;;) {
      const std::uint32_t cur = slot(link);
      if (cur == kNoNode) return false;
      const Node& node = nodes_[cur];
      if (node.len > len || common_prefix(key, node.key) < node.len) return false;
      if (node.len == len) {
        if (!node.has_value) return false;
        break;
      }
      path[depth++] = link;
      link = {cur, key.bit(node.len)};
    }
    const std::uint32_t target = slot(link);
    nodes_[target].has_value = false;
    values_[target].reset();
    --size_;

    // A node without a value is only worth keeping where two subtrees fork. Splice out a node
    // with one child; unlink a childless one, which may leave its parent with a single child.
    for (;;) {
      const std::uint32_t cur = slot(link);
      const Node& node = nodes_[cur];
      if (node.has_value || (node.child[0] != kNoNode && node.child[1] != kNoNode)) break;
      const std::uint32_t only_child = node.child[0] != kNoNode ? node.child[0] : node.child[1];
      slot(link) = only_child;
      free_node(cur);
      if (only_child != kNoNode || depth == 0) break;
      link = path[--depth];
    }
    refresh_root_table(key, len);
    return true;
  }

  std::size_t size() const { return size_; }

  void clear() { *this = Trie{}; }  // also releases the memory

  // Calls f(key, len, value) for every entry, in order of (address, length).
  template <class F>
  void for_each(F& f) const {
    if (root_ != kNoNode) visit(root_, f);
  }

 private:
  struct Node {
    K key;
    std::uint32_t child[2] = {kNoNode, kNoNode};
    std::uint8_t len = 0;
    bool has_value = false;
  };
  // Where a node index is stored: a child slot of `parent`, or the root if parent == kNoNode.
  struct Link {
    std::uint32_t parent;
    unsigned side;
  };
  static constexpr Link kRootLink{kNoNode, 0};
  // For one value of the first kRootBits bits: the longest valued prefix shorter than kRootBits
  // that matches them, and the first node on the walk with len >= kRootBits (if it can match).
  struct RootEntry {
    std::uint32_t best = kNoNode;
    std::uint32_t start = kNoNode;
  };

  std::uint32_t& slot(Link link) {
    return link.parent == kNoNode ? root_ : nodes_[link.parent].child[link.side];
  }

  std::uint32_t new_node(const K& key, unsigned len) {
    const Node node{key, {kNoNode, kNoNode}, static_cast<std::uint8_t>(len), false};
    if (!free_.empty()) {
      const std::uint32_t idx = free_.back();
      free_.pop_back();
      nodes_[idx] = node;
      return idx;
    }
    values_.emplace_back();
    nodes_.push_back(node);
    return static_cast<std::uint32_t>(nodes_.size() - 1);
  }

  void free_node(std::uint32_t idx) {
    values_[idx].reset();
    nodes_[idx] = Node{};
    free_.push_back(idx);
  }

  void set_value(std::uint32_t idx, Value&& value) {
    values_[idx].emplace(std::move(value));
    if (!nodes_[idx].has_value) {
      nodes_[idx].has_value = true;
      ++size_;
    }
  }

  // Recomputes the root-table entries after the prefix (key, len) gained or lost its value.
  // An entry's walk visits exactly the nodes whose prefix agrees with the entry's bits, and the
  // entry depends only on the valued ones among them and on the first with len >= kRootBits.
  // Besides the node (key, len) itself, an insert or remove adds or drops only valueless fork
  // nodes above it: those shorter than kRootBits do not matter, the others share key's first
  // kRootBits bits. So only the entries agreeing with key's first min(len, kRootBits) bits change.
  void refresh_root_table(const K& key, unsigned len) {
    const unsigned fixed = std::min(len, kRootBits);
    const std::size_t first = key.masked(fixed).leading(kRootBits);
    const std::size_t count = std::size_t{1} << (kRootBits - fixed);
    for (std::size_t i = first; i < first + count; ++i) {
      const K bits = K::from_leading(i, kRootBits);
      RootEntry entry;
      std::uint32_t idx = root_;
      while (idx != kNoNode) {
        const Node& node = nodes_[idx];
        if (common_prefix(bits, node.key) < std::min(unsigned{node.len}, kRootBits)) break;
        if (node.len >= kRootBits) {
          entry.start = idx;
          break;
        }
        if (node.has_value) entry.best = idx;
        idx = node.child[bits.bit(node.len)];
      }
      root_table_[i] = entry;
    }
  }

  template <class F>
  void visit(std::uint32_t idx, F& f) const {
    const Node& node = nodes_[idx];
    if (node.has_value) f(node.key, unsigned{node.len}, *values_[idx]);
    for (const std::uint32_t child : node.child) {
      if (child != kNoNode) visit(child, f);
    }
  }

  std::vector<Node> nodes_;                   // the arena; index kNoNode means "none"
  std::vector<std::optional<Value>> values_;  // parallel to nodes_, engaged iff has_value
  std::vector<std::uint32_t> free_;           // recycled arena slots
  std::vector<RootEntry> root_table_;         // 2^kRootBits entries once anything was inserted
  std::uint32_t root_ = kNoNode;
  std::size_t size_ = 0;
};

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
