#pragma once
// For tests: base::test::LogCapture collects the log lines of level info and up written while it
// lives (instead of stderr, whatever level the test runner set), so a test can count what a site
// logged.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/log.hpp"

namespace base::test {

class LogCapture {
 public:
  LogCapture() : level_(base::log::level()) {
    base::log::set_level(base::log::Level::info);
    base::log::set_sink(&LogCapture::collect, this);
  }
  ~LogCapture() {
    base::log::set_sink(nullptr, nullptr);
    base::log::set_level(level_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  const std::vector<std::string>& lines() const { return lines_; }
  // How many lines contain text.
  std::size_t count(std::string_view text) const {
    std::size_t n = 0;
    for (const std::string& line : lines_) n += line.find(text) != std::string::npos;
    return n;
  }

 private:
  static void collect(base::log::Level, const char* line, void* self) {
    static_cast<LogCapture*>(self)->lines_.emplace_back(line);
  }
  base::log::Level level_;  // the level before, restored at the end
  std::vector<std::string> lines_;
};

}  // namespace base::test
