#pragma once
// What the traffic tools share: their error type, usage errors (status 2), integer options, and
// main()'s error handling (status 1). Each tool sets tool::name and tool::usage_text first thing.

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace tool {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline const char* name = "tool";    // prefix of every message
inline const char* usage_text = "";  // printed after a usage error

[[noreturn]] inline void usage(const std::string& why = "") {
  if (!why.empty()) std::fprintf(stderr, "%s: %s\n", name, why.c_str());
  std::fputs(usage_text, stderr);
  std::exit(2);
}

// The integer value v of option key, decimal (or hex with 0x), within [lo, hi]; else a usage error.
inline unsigned long long number(const std::string& key, const std::string& v,
                                 unsigned long long lo, unsigned long long hi) {
  char* end = nullptr;
  errno = 0;
  int base = v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') ? 16 : 10;
  unsigned long long x = std::strtoull(v.c_str(), &end, base);
  if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 || x < lo || x > hi)
    usage(key + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
          ", not '" + v + "'");
  return x;
}

// fn(), with a tool::Error turned into "NAME: what" on stderr and status 1.
template <class F>
int run_main(F&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

// Paces a bounded send loop: send i is due at start + i / rate (rate 0: at once); nothing after
// start + timeout_s.
class Pacer {
 public:
  Pacer(unsigned long long rate, unsigned long long timeout_s)
      : rate_(rate),
        start_(std::chrono::steady_clock::now()),
        deadline_(start_ + std::chrono::seconds(timeout_s)) {}
  // Sleeps until send i is due; false (and timed_out()) when it would be past the deadline.
  bool wait(unsigned long long i) {
    auto now = std::chrono::steady_clock::now();
    auto due = rate_ > 0 ? start_ + std::chrono::nanoseconds(i * 1000000000ULL / rate_) : now;
    if (now >= deadline_ || due > deadline_) {
      timed_out_ = true;
      return false;
    }
    if (due - now > std::chrono::milliseconds(1)) std::this_thread::sleep_until(due);
    return true;
  }
  bool timed_out() const { return timed_out_; }
  std::chrono::steady_clock::time_point start() const { return start_; }

 private:
  unsigned long long rate_;
  std::chrono::steady_clock::time_point start_, deadline_;
  bool timed_out_ = false;
};

}  // namespace tool
