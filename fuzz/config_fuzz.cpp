// libFuzzer target: the config parser (toml++ underneath, then our validation) on arbitrary
// text. Built and run by fuzz/run.sh config SECONDS. Whatever the text: either a Config or a
// ConfigError with a message naming the source, never a crash, another exception, or UB.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "src/control/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    control::Config c = control::parse_config(text, "fuzz.toml");
    // A valid config survives being compared with itself for a reload.
    if (!control::restart_needed(c, c).empty()) std::abort();
  } catch (const control::ConfigError& e) {
    if (std::string_view(e.what()).find("fuzz.toml") == std::string_view::npos) std::abort();
  }
  return 0;
}
