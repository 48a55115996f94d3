#include "src/base/log.hpp"

#include <cstdarg>
#include <cstdio>

namespace base::log {
namespace {
Level current = Level::info;
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
Sink sink_fn = nullptr;
void* sink_context = nullptr;
}  // namespace

void set_level(Level level) {
  current = level;
}
Level level() {
  return current;
}

bool parse_level(std::string_view text, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void write(Level level, const char* fmt, ...) {
  if (level < current) return;
  char line[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  if (sink_fn) {
    sink_fn(level, line, sink_context);
    return;
  }
  std::fprintf(stderr, "sctptund[%s]: %s\n", kNames[static_cast<int>(level)], line);
}

void set_sink(Sink sink, void* context) {
  sink_fn = sink;
  sink_context = context;
}

}  // namespace base::log
