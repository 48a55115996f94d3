#pragma once
// The event loop and its RAII watchers. This header hides libev: event_loop.cpp is the only file
// that includes <ev.h>. Callbacks run on the loop's thread; a watcher stops when destroyed.

#include <functional>
#include <memory>

namespace base {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void run();       // until stop()
  void run_once();  // one iteration, non-blocking (tests)
  void stop();
  double now() const;  // the loop's cached time, seconds
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

enum IoEvents { kRead = 1, kWrite = 2 };

// Calls back while fd is ready for the requested events.
class IoWatcher {
 public:
  IoWatcher(EventLoop& loop, int fd, int events, std::function<void(int revents)> cb);
  ~IoWatcher();
  void start();
  void stop();
  bool active() const;
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Calls back after `after` seconds, then every `repeat` seconds if repeat > 0.
class Timer {
 public:
  Timer(EventLoop& loop, double after, double repeat, std::function<void()> cb);
  ~Timer();
  void start();
  void stop();
  void again();              // restarts the repeat interval from now
  void start(double after);  // (re)starts as a one-shot after `after` seconds
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class Signal {
 public:
  Signal(EventLoop& loop, int signum, std::function<void()> cb);
  ~Signal();
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Calls back once per loop iteration, just before the loop blocks: the place to flush batches.
// Those of Order::last run after all others of the iteration (which may still produce what they
// flush).
class BeforeBlock {
 public:
  enum class Order { normal, last };
  BeforeBlock(EventLoop& loop, std::function<void()> cb, Order order = Order::normal);
  ~BeforeBlock();
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace base
