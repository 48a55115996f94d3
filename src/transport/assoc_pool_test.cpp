#include "src/transport/assoc_pool.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/base/test_log.hpp"

using transport::AssocChange;
using transport::AssocId;
using transport::AssocLink;
using transport::AssocPool;
using transport::PeerId;
using transport::SlotEvent;
using transport::SlotState;
using transport::Time;

namespace {

// What the gateway hears, in order: "up 1 peer 0 streams 16", "down 1".
struct Recorder final : transport::Events {
  std::vector<std::string> log;
  void on_assoc_up(AssocId assoc, PeerId peer, std::uint16_t out_streams) override {
    log.push_back("up " + std::to_string(assoc) + " peer " + std::to_string(peer) + " streams " +
                  std::to_string(out_streams));
  }
  void on_assoc_down(AssocId assoc) override { log.push_back("down " + std::to_string(assoc)); }
  void on_message(AssocId, std::uint16_t, tun::PacketBuf&) override {}
  void on_writable() override {}
  std::vector<std::string> take() { return std::exchange(log, {}); }
};

// A backend's record: the pool's part and something of its own.
struct FakeLink : AssocLink {
  int socket = -1;
};

// Two peers, "a" with 3 slots and "b" with 2, on SCTP ports 9899 and up; backoff 0.1 .. 2 s.
struct Fixture {
  AssocPool pool{{.min = 0.1, .max = 2.0}, 9899};
  Recorder events;
  std::vector<std::unique_ptr<FakeLink>> links;
  Fixture() {
    pool.set_events(&events);
    for (auto [name, slots] : {std::pair{"a", 3}, std::pair{"b", 2}}) {
      PeerId id = pool.add_peer(name);
      for (int i = 0; i < slots; ++i) {
        links.push_back(std::make_unique<FakeLink>());
        pool.add(*links.back(), id);
      }
    }
  }
  FakeLink& link(PeerId peer, std::size_t slot) {
    return static_cast<FakeLink&>(*pool.at(peer, slot));
  }
  // connect, then COMM_UP with 16 streams each way.
  void bring_up(AssocLink& link) {
    REQUIRE(pool.transition(link, SlotEvent::connect));
    REQUIRE(pool.up(link, 16, 16, "up", "", Time(0)));
  }
};

}  // namespace

TEST_CASE("assoc pool: slots pair up by index, on consecutive SCTP ports, per peer") {
  Fixture f;
  CHECK(f.pool.slots(0) == 3);
  CHECK(f.pool.slots(1) == 2);
  CHECK(f.pool.name(1) == "b");
  for (PeerId peer : {0u, 1u}) {
    for (std::size_t slot = 0; slot < f.pool.slots(peer); ++slot) {
      const AssocLink* link = f.pool.at(peer, slot);
      REQUIRE(link != nullptr);
      CHECK(link->peer == peer);
      CHECK(link->slot == slot);
      CHECK(link->port == 9899 + slot);  // slot i: port base+i on both ends
      CHECK(link->machine.state() == SlotState::closed);
      CHECK(link->assoc == 0);
    }
  }
  CHECK(f.pool.at(1, 2) == nullptr);  // peer b has two slots: a third is none of ours
  CHECK(f.pool.at(2, 0) == nullptr);  // no such peer
  CHECK(f.pool.at(0, 2) == f.links[2].get());
}

TEST_CASE("assoc pool: up gives a fresh id, found by lookup; a restart replaces it") {
  Fixture f;
  FakeLink& a0 = f.link(0, 0);
  FakeLink& b1 = f.link(1, 1);
  CHECK(f.pool.find(0) == nullptr);
  f.bring_up(a0);
  f.bring_up(b1);
  CHECK(a0.machine.ready());
  CHECK(a0.assoc == 1);
  CHECK(b1.assoc == 2);
  CHECK(a0.in_streams == 16);
  CHECK(a0.out_streams == 16);
  CHECK(f.events.take() ==
        std::vector<std::string>{"up 1 peer 0 streams 16", "up 2 peer 1 streams 16"});
  CHECK(f.pool.find(1) == &a0);
  CHECK(f.pool.find(2) == &b1);
  CHECK(f.pool.find(3) == nullptr);
  CHECK(f.pool.any_ready(0));
  CHECK(f.pool.any_ready(1));

  // The peer restarted slot a0: the old id goes down first, a new one comes up.
  REQUIRE(f.pool.up(a0, 8, 4, "restarted by peer", "", Time(0)));
  CHECK(f.events.take() == std::vector<std::string>{"down 1", "up 3 peer 0 streams 4"});
  CHECK(f.pool.find(1) == nullptr);  // an id is never reused
  CHECK(f.pool.find(3) == &a0);
  CHECK(a0.in_streams == 8);
}

TEST_CASE("assoc pool: up is refused where the slot cannot carry an association") {
  Fixture f;
  FakeLink& a0 = f.link(0, 0);
  CHECK_FALSE(f.pool.up(a0, 16, 16, "up", "", Time(0)));  // closed: no socket, no association
  CHECK(a0.assoc == 0);
  f.bring_up(a0);
  f.pool.shutdown(a0);
  CHECK(a0.machine.state() == SlotState::draining);
  CHECK_FALSE(f.pool.up(a0, 16, 16, "up", "", Time(0)));  // draining: nothing new
  CHECK(a0.assoc == 0);
  CHECK(f.events.take() == std::vector<std::string>{"up 1 peer 0 streams 16", "down 1"});
}

TEST_CASE("assoc pool: lost takes the association down and reconnects with backoff") {
  Fixture f;
  FakeLink& a1 = f.link(0, 1);
  f.bring_up(a1);
  f.events.take();
  a1.blocked = true;
  Time now(100);
  double delay = f.pool.lost(a1, "communication lost", now);
  CHECK(a1.machine.state() == SlotState::closed);
  CHECK(a1.assoc == 0);
  CHECK_FALSE(a1.blocked);  // no on_writable is owed for a gone association
  CHECK(f.events.take() == std::vector<std::string>{"down 1"});
  CHECK(delay == doctest::Approx(0.1));
  CHECK(a1.reconnect_at.seconds() == doctest::Approx(100.1));

  // Each failed attempt doubles the delay up to the max; the backoff restarts once ready.
  std::vector<double> delays;
  for (int i = 0; i < 6; ++i) {
    now = a1.reconnect_at;
    REQUIRE(f.pool.transition(a1, SlotEvent::connect));
    delays.push_back(f.pool.lost(a1, "peer unreachable", now));
    CHECK(a1.reconnect_at == now + delays.back());
  }
  CHECK(delays == std::vector<double>{0.2, 0.4, 0.8, 1.6, 2.0, 2.0});
  CHECK(f.events.take().empty());  // no association, nothing to tell
  f.bring_up(a1);
  CHECK(f.pool.lost(a1, "communication lost", now) == doctest::Approx(0.1));
}

TEST_CASE("assoc pool: a slot's ups and losses are logged at most twice per 10 s") {
  // A peer that opens associations and aborts them again, 1000 times within 5 s: two lines, and
  // the next one, 10 s on, reports the rest. The gateway still hears every change.
  Fixture f;
  FakeLink& a0 = f.link(0, 0);
  base::test::LogCapture capture;
  for (int i = 0; i < 1000; ++i) {
    Time now(100 + i * 0.005);
    REQUIRE(f.pool.transition(a0, SlotEvent::connect));
    REQUIRE(f.pool.up(a0, 16, 16, "up", "", now));
    f.pool.lost(a0, "communication lost", now);
  }
  CHECK(f.events.take().size() == 2000);
  CHECK(capture.count("peer a: association 1 (slot 0, SCTP port 9899) up") == 1);
  CHECK(capture.count("peer a: association 1 (slot 0) lost (communication lost)") == 1);
  CHECK(capture.count("association") == 2);
  // Another slot has its own limit.
  FakeLink& a1 = f.link(0, 1);
  f.bring_up(a1);
  CHECK(capture.count("(slot 1, SCTP port 9900) up") == 1);
  REQUIRE(f.pool.transition(a0, SlotEvent::connect));
  REQUIRE(f.pool.up(a0, 16, 16, "up", "", Time(110)));
  REQUIRE_FALSE(capture.lines().empty());
  CHECK(capture.lines().back() ==
        "peer a: association 1002 (slot 0, SCTP port 9899) up (1998 more of this slot's lines not "
        "logged since the last)");
}

TEST_CASE("assoc pool: illegal events are logged once per 10 s per peer") {
  Fixture f;
  base::test::LogCapture capture;
  for (int i = 0; i < 100; ++i) f.pool.transition(f.link(1, i % 2), SlotEvent::comm_up);
  CHECK(capture.count("peer b: slot") == 1);
  CHECK(capture.count("is illegal in state closed (ignored; 0 such events") == 1);
  // The pool reads no clock: the limit counts in the latest time it was handed.
  f.pool.schedule_reconnect(f.link(1, 0), Time(20));
  f.pool.transition(f.link(1, 0), SlotEvent::comm_up);
  CHECK(capture.count("(ignored; 99 such events not logged since the last line)") == 1);
}

TEST_CASE("assoc pool: a lost slot that is draining or already closed just closes") {
  Fixture f;
  FakeLink& a0 = f.link(0, 0);
  f.bring_up(a0);
  f.pool.shutdown(a0);
  CHECK(f.events.take() == std::vector<std::string>{"up 1 peer 0 streams 16", "down 1"});
  f.pool.lost(a0, "shut down by peer", Time(1));
  CHECK(a0.machine.state() == SlotState::closed);
  CHECK(f.events.take().empty());     // it went down at the shutdown already
  f.pool.lost(a0, "again", Time(2));  // a closed slot stays closed (no illegal event)
  CHECK(a0.machine.state() == SlotState::closed);
}

TEST_CASE("assoc pool: abort holds the slot off for the backoff's max") {
  Fixture f;
  FakeLink& b0 = f.link(1, 0);
  f.bring_up(b0);
  f.events.take();
  Time now(50);
  CHECK(f.pool.held_for(b0, now) == 0);
  f.pool.abort(b0, "malformed HELLO", now);
  CHECK(b0.machine.state() == SlotState::draining);
  CHECK(b0.assoc == 0);
  CHECK(f.pool.find(1) == nullptr);
  CHECK(f.events.take() == std::vector<std::string>{"down 1"});
  // No connect (ours or for the peer's INIT) within the hold-off.
  CHECK(f.pool.held_for(b0, now) == doctest::Approx(2.0));
  CHECK(f.pool.held_for(b0, Time(51.5)) == doctest::Approx(0.5));
  CHECK(f.pool.held_for(b0, Time(52)) == 0);
  CHECK(f.pool.held_for(b0, Time(60)) == 0);
  // The socket is closed; the reconnect waits out the hold-off, even if the backoff was short.
  REQUIRE(f.pool.transition(b0, SlotEvent::socket_closed));
  CHECK(f.pool.schedule_reconnect(b0, Time(50.5)) == doctest::Approx(2.0));
  CHECK(b0.reconnect_at == Time(52.5));
  // A reconnect decided late in the hold-off still waits for the backoff.
  CHECK(f.pool.schedule_reconnect(b0, Time(51.9)) == doctest::Approx(2.0));
}

TEST_CASE("assoc pool: the reconnect never comes before the hold-off ends") {
  AssocPool pool({.min = 0.1, .max = 0.5}, 9899);
  AssocLink link;
  pool.add(link, pool.add_peer("p"));
  pool.transition(link, SlotEvent::connect);
  pool.abort(link, "test", Time(10));  // hold-off: 0.5 s (the max)
  pool.transition(link, SlotEvent::lost);
  double delay = pool.schedule_reconnect(link, Time(10));
  CHECK(delay >= 0.5);
  CHECK(link.reconnect_at >= link.hold_until);
}

TEST_CASE("assoc pool: aborting a connecting slot tells the gateway nothing") {
  Fixture f;
  FakeLink& a2 = f.link(0, 2);
  REQUIRE(f.pool.transition(a2, SlotEvent::connect));
  f.pool.abort(a2, "test", Time(0));
  CHECK(a2.machine.state() == SlotState::draining);
  CHECK(f.events.take().empty());
}

TEST_CASE("assoc pool: a slot the peer lacks keeps retrying while the others work") {
  Fixture f;
  f.bring_up(f.link(0, 0));
  f.bring_up(f.link(0, 1));
  FakeLink& a2 = f.link(0, 2);
  Time now(0);
  double waited = 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    REQUIRE(f.pool.transition(a2, SlotEvent::connect));
    double delay = f.pool.lost(a2, "peer unreachable", now);
    waited += delay;
    now = now + delay;
    if (attempt < 2) CHECK_FALSE(a2.mismatch_logged);
  }
  CHECK(a2.mismatch_logged);  // said once, from the third failure on
  CHECK(a2.machine.failed_connects() == 10);
  CHECK(waited > 10 * 1.0);  // backed off, not hammering
  CHECK(f.link(0, 0).machine.ready());
  CHECK(f.link(0, 1).machine.ready());
}

TEST_CASE("assoc pool: no mismatch is suspected while no slot of the peer works") {
  Fixture f;
  FakeLink& b1 = f.link(1, 1);
  f.bring_up(f.link(0, 0));  // another peer's slot does not count
  for (int attempt = 0; attempt < 5; ++attempt) {
    REQUIRE(f.pool.transition(b1, SlotEvent::connect));
    f.pool.lost(b1, "peer unreachable", Time(attempt));
  }
  CHECK_FALSE(b1.mismatch_logged);
  CHECK_FALSE(f.pool.any_ready(1));
}

TEST_CASE("assoc pool: the listing's common fields") {
  Fixture f;
  FakeLink& a1 = f.link(0, 1);
  f.bring_up(a1);
  a1.count_sent(100);
  a1.count_sent(50);
  a1.count_received(1000);
  transport::AssocInfo info = f.pool.info(a1);
  CHECK(info.id == 1);
  CHECK(info.peer == 0);
  CHECK(info.slot == 1);
  CHECK(info.state == "established");
  CHECK(info.pool_state == "ready");
  CHECK(info.in_streams == 16);
  CHECK(info.out_streams == 16);
  CHECK(info.sent_messages == 2);
  CHECK(info.sent_bytes == 150);
  CHECK(info.received_messages == 1);
  CHECK(info.received_bytes == 1000);

  transport::AssocInfo closed = f.pool.info(f.link(1, 0));
  CHECK(closed.id == 0);
  CHECK(closed.peer == 1);
  CHECK(closed.state == "closed");
  CHECK(closed.pool_state == "closed");
  REQUIRE(f.pool.transition(f.link(1, 0), SlotEvent::connect));
  CHECK(f.pool.info(f.link(1, 0)).state == "connecting");
}

TEST_CASE("assoc pool: SCTP_ASSOC_CHANGE states of either socket API, and why a slot is down") {
  // Two numberings of the same states (usrsctp counts from 1, the kernel from 0).
  constexpr transport::AssocChangeStates one{1, 3, 2, 4, 5}, zero{0, 2, 1, 3, 4};
  CHECK(transport::assoc_change(one, 1) == AssocChange::comm_up);
  CHECK(transport::assoc_change(zero, 0) == AssocChange::comm_up);
  CHECK(transport::assoc_change(one, 3) == AssocChange::restart);
  CHECK(transport::assoc_change(zero, 3) == AssocChange::shutdown_comp);
  CHECK(transport::assoc_change(one, 9) == AssocChange::other);
  CHECK(transport::is_up(AssocChange::comm_up));
  CHECK(transport::is_up(AssocChange::restart));
  CHECK_FALSE(transport::is_up(AssocChange::comm_lost));
  CHECK(std::string(transport::down_reason(AssocChange::comm_lost)) == "communication lost");
  CHECK(std::string(transport::down_reason(AssocChange::shutdown_comp)) == "shut down by peer");
  CHECK(std::string(transport::down_reason(AssocChange::cant_start)) == "peer unreachable");
  CHECK(transport::down_reason(AssocChange::comm_up) == nullptr);
  CHECK(transport::down_reason(AssocChange::other) == nullptr);
}
