#include "src/crypto/key.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>

namespace {

// The /proc/self/smaps entry of the mapping holding address: its permissions ("rw-p") and
// VmFlags ("rd wr mr mw me ac dd lo"); empty strings when no mapping holds it.
struct Mapping {
  std::string perms, flags;
};
Mapping mapping_of(const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  REQUIRE(smaps.good());
  std::string line;
  bool inside = false;
  Mapping found;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      if (inside) break;
      inside = at >= lo && at < hi;
      if (inside) head >> found.perms;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      found.flags = line.substr(8) + " ";
    }
  }
  return found;
}

bool has_flag(const Mapping& m, const char* flag) {
  return m.flags.find(std::string(" ") + flag + " ") != std::string::npos;
}

}  // namespace

TEST_CASE("crypto key: the bytes sit between guard pages, outside core dumps") {
  crypto::Key key;
  Mapping own = mapping_of(key.data());
  REQUIRE(!own.flags.empty());
  CHECK(has_flag(own, "dd"));  // MADV_DONTDUMP
  CHECK(own.perms.substr(0, 2) == "rw");
  // The page right after the last byte is a guard: mapped without any access.
  const auto page = static_cast<std::uintptr_t>(4096);
  const auto last = reinterpret_cast<std::uintptr_t>(key.data() + key.size() - 1);
  Mapping guard = mapping_of(reinterpret_cast<const void*>((last | (page - 1)) + 1));
  CHECK(guard.perms.substr(0, 3) == "---");
  // The oracle: an ordinary allocation of the same size is dumped (a std::array key was).
  auto plain = std::make_unique<std::array<std::uint8_t, crypto::kKeySize>>();
  CHECK_FALSE(has_flag(mapping_of(plain->data()), "dd"));
}

TEST_CASE("crypto key: zero at first, copies are separate allocations, moves hand the memory on") {
  crypto::Key a;
  for (std::uint8_t b : a) CHECK(b == 0);
  a.fill(7);
  a[31] = 9;
  crypto::Key b = a;
  CHECK(b == a);
  CHECK(b.data() != a.data());
  CHECK(has_flag(mapping_of(b.data()), "dd"));
  b[0] ^= 1;
  CHECK_FALSE(b == a);
  CHECK(a[0] == 7);
  const std::uint8_t* held = a.data();
  crypto::Key c = std::move(a);
  CHECK(c.data() == held);
  CHECK(c[31] == 9);
  a = c;  // a moved-from key takes an assignment
  CHECK(a == c);
  CHECK(a.data() != c.data());
}

TEST_CASE("crypto key: parse_key reads the base64 generate_key writes") {
  std::string text = crypto::generate_key();
  CHECK(text.size() == 44);
  std::string error;
  auto key = crypto::parse_key(" " + text + "\n", error);
  REQUIRE(key.has_value());
  CHECK(has_flag(mapping_of(key->data()), "dd"));
  CHECK_FALSE(crypto::parse_key(text.substr(0, 40), error).has_value());
  CHECK(error.find("must be 32") != std::string::npos);
}
