#pragma once
// Logging to stderr (the journal collects it): one line per event that matters, never per packet.

#include <string_view>

namespace base::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level& out);

void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// For tests: where write() sends each line instead of stderr (nullptr: stderr again), with the
// line as formatted (no prefix, no newline) and the context given here.
using Sink = void (*)(Level level, const char* line, void* context);
void set_sink(Sink sink, void* context);

}  // namespace base::log

#define LOG_DEBUG(...)                                        \
  do {                                                        \
    if (base::log::level() <= base::log::Level::debug)        \
      base::log::write(base::log::Level::debug, __VA_ARGS__); \
  } while (0)
#define LOG_INFO(...) base::log::write(base::log::Level::info, __VA_ARGS__)
#define LOG_WARN(...) base::log::write(base::log::Level::warn, __VA_ARGS__)
#define LOG_ERROR(...) base::log::write(base::log::Level::error, __VA_ARGS__)
