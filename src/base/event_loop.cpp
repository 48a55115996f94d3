#include "src/base/event_loop.hpp"

#include <ev.h>

namespace base {

struct EventLoop::Impl {
  struct ev_loop* raw;
};

EventLoop::EventLoop() : impl_(new Impl{ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK)}) {}
EventLoop::~EventLoop() {
  ev_loop_destroy(impl_->raw);
}
void EventLoop::run() {
  ev_run(impl_->raw, 0);
}
void EventLoop::run_once() {
  ev_run(impl_->raw, EVRUN_NOWAIT);
}
void EventLoop::stop() {
  ev_break(impl_->raw, EVBREAK_ALL);
}
double EventLoop::now() const {
  return ev_now(impl_->raw);
}

// Each Impl starts with its libev watcher so the callback can cast back to it.
struct IoWatcher::Impl {
  ev_io io;
  struct ev_loop* raw;
  std::function<void(int)> cb;
};

IoWatcher::IoWatcher(EventLoop& loop, int fd, int events, std::function<void(int)> cb)
    : impl_(new Impl{{}, loop.impl().raw, std::move(cb)}) {
  int ev_events = ((events & kRead) ? EV_READ : 0) | ((events & kWrite) ? EV_WRITE : 0);
  ev_io_init(
      &impl_->io,
      [](struct ev_loop*, ev_io* w, int revents) {
        auto* self = reinterpret_cast<Impl*>(w);
        self->cb(((revents & EV_READ) ? kRead : 0) | ((revents & EV_WRITE) ? kWrite : 0));
      },
      fd, ev_events);
}
IoWatcher::~IoWatcher() {
  stop();
}
void IoWatcher::start() {
  ev_io_start(impl_->raw, &impl_->io);
}
void IoWatcher::stop() {
  ev_io_stop(impl_->raw, &impl_->io);
}
bool IoWatcher::active() const {
  return ev_is_active(&impl_->io);
}

struct Timer::Impl {
  ev_timer timer;
  struct ev_loop* raw;
  std::function<void()> cb;
};

Timer::Timer(EventLoop& loop, double after, double repeat, std::function<void()> cb)
    : impl_(new Impl{{}, loop.impl().raw, std::move(cb)}) {
  ev_timer_init(
      &impl_->timer, [](struct ev_loop*, ev_timer* w, int) { reinterpret_cast<Impl*>(w)->cb(); },
      after, repeat);
}
Timer::~Timer() {
  stop();
}
void Timer::start() {
  ev_timer_start(impl_->raw, &impl_->timer);
}
void Timer::stop() {
  ev_timer_stop(impl_->raw, &impl_->timer);
}
void Timer::again() {
  ev_timer_again(impl_->raw, &impl_->timer);
}
void Timer::start(double after) {
  ev_timer_stop(impl_->raw, &impl_->timer);
  ev_timer_set(&impl_->timer, after, 0.);
  ev_timer_start(impl_->raw, &impl_->timer);
}

struct Signal::Impl {
  ev_signal signal;
  struct ev_loop* raw;
  std::function<void()> cb;
};

Signal::Signal(EventLoop& loop, int signum, std::function<void()> cb)
    : impl_(new Impl{{}, loop.impl().raw, std::move(cb)}) {
  ev_signal_init(
      &impl_->signal, [](struct ev_loop*, ev_signal* w, int) { reinterpret_cast<Impl*>(w)->cb(); },
      signum);
  ev_signal_start(impl_->raw, &impl_->signal);
}
Signal::~Signal() {
  ev_signal_stop(impl_->raw, &impl_->signal);
}

struct BeforeBlock::Impl {
  ev_prepare prepare;
  struct ev_loop* raw;
  std::function<void()> cb;
};

BeforeBlock::BeforeBlock(EventLoop& loop, std::function<void()> cb, Order order)
    : impl_(new Impl{{}, loop.impl().raw, std::move(cb)}) {
  ev_prepare_init(&impl_->prepare,
                  [](struct ev_loop*, ev_prepare* w, int) { reinterpret_cast<Impl*>(w)->cb(); });
  // Pending watchers run from the highest priority down.
  if (order == Order::last) ev_set_priority(&impl_->prepare, EV_MINPRI);
  ev_prepare_start(impl_->raw, &impl_->prepare);
}
BeforeBlock::~BeforeBlock() {
  ev_prepare_stop(impl_->raw, &impl_->prepare);
}

}  // namespace base
