#pragma once
// The innards of PrefixTable (prefix_table.hpp): a fixed-width key, and one family's
// path-compressed binary trie with its root table. Internal: included by prefix_table.hpp only.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace policy::detail {

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

}  // namespace policy::detail
