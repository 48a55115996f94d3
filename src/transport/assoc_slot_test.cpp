#include "src/transport/assoc_slot.hpp"

#include <doctest/doctest.h>

#include <vector>

using transport::AssocSlot;
using transport::SlotEvent;
using transport::SlotState;

namespace {

constexpr SlotState kStates[] = {SlotState::closed, SlotState::connecting, SlotState::ready,
                                 SlotState::draining};
constexpr SlotEvent kEvents[] = {SlotEvent::connect, SlotEvent::comm_up,  SlotEvent::lost,
                                 SlotEvent::abort,   SlotEvent::shutdown, SlotEvent::socket_closed};

// Drives a slot through events; CHECKs that each is accepted.
void drive(AssocSlot& slot, std::initializer_list<SlotEvent> events) {
  for (SlotEvent e : events) {
    INFO("event ", transport::to_string(e), " in ", transport::to_string(slot.state()));
    CHECK(slot.on(e));
  }
}

}  // namespace

TEST_CASE("assoc pool: the transition table is exactly the documented one") {
  struct Row {
    SlotState from;
    SlotEvent event;
    SlotState to;
  };
  const std::vector<Row> table = {
      {SlotState::closed, SlotEvent::connect, SlotState::connecting},
      {SlotState::connecting, SlotEvent::comm_up, SlotState::ready},
      {SlotState::connecting, SlotEvent::lost, SlotState::closed},
      {SlotState::connecting, SlotEvent::abort, SlotState::draining},
      {SlotState::connecting, SlotEvent::shutdown, SlotState::draining},
      {SlotState::ready, SlotEvent::comm_up, SlotState::ready},
      {SlotState::ready, SlotEvent::lost, SlotState::closed},
      {SlotState::ready, SlotEvent::abort, SlotState::draining},
      {SlotState::ready, SlotEvent::shutdown, SlotState::draining},
      {SlotState::draining, SlotEvent::lost, SlotState::closed},
      {SlotState::draining, SlotEvent::socket_closed, SlotState::closed},
      {SlotState::draining, SlotEvent::shutdown, SlotState::draining},
  };
  int legal = 0;
  for (SlotState s : kStates) {
    for (SlotEvent e : kEvents) {
      INFO(transport::to_string(s), " + ", transport::to_string(e));
      auto next = transport::next_state(s, e);
      const Row* row = nullptr;
      for (const Row& r : table) {
        if (r.from == s && r.event == e) row = &r;
      }
      if (row) {
        ++legal;
        REQUIRE(next.has_value());
        CHECK(*next == row->to);
      } else {
        CHECK_FALSE(next.has_value());
      }
    }
  }
  CHECK(legal == static_cast<int>(table.size()));
}

TEST_CASE("assoc pool: a slot's life: connect, ready, lost, reconnect") {
  AssocSlot slot;
  CHECK(slot.state() == SlotState::closed);
  CHECK_FALSE(slot.ready());
  drive(slot, {SlotEvent::connect, SlotEvent::comm_up});
  CHECK(slot.ready());
  CHECK(slot.ups() == 1);
  drive(slot, {SlotEvent::comm_up});  // restarted by the peer: still ready
  CHECK(slot.ups() == 2);
  drive(slot, {SlotEvent::lost});
  CHECK(slot.state() == SlotState::closed);
  drive(slot, {SlotEvent::connect});
  CHECK(slot.state() == SlotState::connecting);
  CHECK(slot.connects() == 2);
}

TEST_CASE("assoc pool: abort and shutdown drain, then close") {
  AssocSlot slot;
  drive(slot, {SlotEvent::connect, SlotEvent::comm_up, SlotEvent::abort});
  CHECK(slot.state() == SlotState::draining);
  CHECK_FALSE(slot.ready());
  CHECK_FALSE(slot.on(SlotEvent::comm_up));  // a draining slot carries nothing new
  CHECK_FALSE(slot.on(SlotEvent::connect));
  CHECK(slot.state() == SlotState::draining);
  drive(slot, {SlotEvent::socket_closed});
  CHECK(slot.state() == SlotState::closed);

  drive(slot, {SlotEvent::connect, SlotEvent::comm_up, SlotEvent::shutdown, SlotEvent::shutdown,
               SlotEvent::lost});
  CHECK(slot.state() == SlotState::closed);
}

TEST_CASE("assoc pool: illegal events are rejected and change nothing") {
  AssocSlot slot;
  CHECK_FALSE(slot.on(SlotEvent::comm_up));  // no socket, no association
  CHECK_FALSE(slot.on(SlotEvent::lost));
  CHECK_FALSE(slot.on(SlotEvent::abort));
  CHECK_FALSE(slot.on(SlotEvent::socket_closed));
  CHECK(slot.state() == SlotState::closed);
  drive(slot, {SlotEvent::connect});
  CHECK_FALSE(slot.on(SlotEvent::connect));  // one socket per slot
  CHECK_FALSE(slot.on(SlotEvent::socket_closed));
  CHECK(slot.state() == SlotState::connecting);
  CHECK(slot.connects() == 1);
}

TEST_CASE("assoc pool: reconnect backoff doubles, is bounded, and resets when ready") {
  AssocSlot slot({.min = 0.1, .max = 2.0});
  CHECK(slot.next_backoff() == doctest::Approx(0.1));
  CHECK(slot.next_backoff() == doctest::Approx(0.2));
  CHECK(slot.next_backoff() == doctest::Approx(0.4));
  for (int i = 0; i < 10; ++i) slot.next_backoff();
  CHECK(slot.next_backoff() == doctest::Approx(2.0));
  drive(slot, {SlotEvent::connect, SlotEvent::comm_up});
  CHECK(slot.peek_backoff() == doctest::Approx(0.1));
  slot.hold_off(1.0);  // after an abort: wait at least a second
  CHECK(slot.next_backoff() == doctest::Approx(1.0));
}

TEST_CASE("assoc pool: failed connects are counted until the slot is ready") {
  AssocSlot slot;
  for (int i = 0; i < 3; ++i) drive(slot, {SlotEvent::connect, SlotEvent::lost});
  CHECK(slot.failed_connects() == 3);
  drive(slot, {SlotEvent::connect, SlotEvent::comm_up});
  CHECK(slot.failed_connects() == 0);
  drive(slot, {SlotEvent::lost});  // losing a ready association is no failed connect
  CHECK(slot.failed_connects() == 0);
}

TEST_CASE("assoc pool: a pool of fakes - a slot the peer lacks keeps retrying, the others work") {
  // Three slots here, the peer has two: slots 0 and 1 come up, slot 2 fails again and again.
  std::vector<AssocSlot> pool(3);
  for (auto& s : pool) drive(s, {SlotEvent::connect});
  drive(pool[0], {SlotEvent::comm_up});
  drive(pool[1], {SlotEvent::comm_up});
  double waited = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    drive(pool[2], {SlotEvent::lost});
    waited += pool[2].next_backoff();
    drive(pool[2], {SlotEvent::connect});
  }
  CHECK(pool[0].ready());
  CHECK(pool[1].ready());
  CHECK(pool[2].state() == SlotState::connecting);
  CHECK(pool[2].failed_connects() == 20);
  CHECK(waited > 20 * 1.0);  // backed off, not hammering
  // One slot lost: the others stay ready; it comes back.
  drive(pool[1], {SlotEvent::lost});
  CHECK(pool[0].ready());
  drive(pool[1], {SlotEvent::connect, SlotEvent::comm_up});
  CHECK(pool[1].ready());
}
