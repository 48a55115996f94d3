#pragma once
// LoopbackTransport: an in-memory Transport for tests. Two of them are joined by a LoopbackLink;
// messages sent on one are queued and delivered to the other by LoopbackLink::deliver(), never
// from inside send(), like a real network.

#include <cstddef>
#include <deque>
#include <vector>

#include "src/transport/transport.hpp"

namespace transport {

class LoopbackLink;

class LoopbackTransport final : public Transport {
 public:
  void set_events(Events* events) override { events_ = events; }
  void start() override {}
  SendResult send(AssocId assoc, std::uint16_t stream, std::span<const std::uint8_t> msg,
                  SendOptions options = {}) override;
  void abort(AssocId assoc, const char* reason) override;
  std::vector<AssocInfo> associations() const override;
  TransportStats stats() const override { return {}; }
  const char* kind() const override { return "loopback"; }

  // Messages queued towards the other side, at most this many (then would_block).
  std::size_t capacity = 1024;
  std::vector<std::pair<std::uint16_t, std::vector<std::uint8_t>>> sent_log;  // every accepted send
  std::vector<bool> sent_redundant;  // its SendOptions::redundant, by the index in sent_log
  std::size_t aborts = 0;

 private:
  friend class LoopbackLink;
  struct Queued {
    AssocId assoc;
    std::uint16_t stream;
    std::vector<std::uint8_t> bytes;
  };
  Events* events_ = nullptr;
  LoopbackLink* link_ = nullptr;
  std::deque<Queued> outbox_;
  AssocId assoc_ = 0;  // 0: down
  std::uint16_t out_streams_ = 0;
  bool blocked_ = false;  // a send returned would_block: on_writable is owed
};

class LoopbackLink {
 public:
  LoopbackLink();
  LoopbackTransport& a() { return a_; }
  LoopbackTransport& b() { return b_; }

  // Brings up one association (peer 0 on both sides) with the given stream counts.
  void up(std::uint16_t streams_a_to_b = 16, std::uint16_t streams_b_to_a = 16);
  void down();
  // Delivers every queued message both ways (and what handlers send in reply), then owed
  // on_writable events. Returns the number of messages delivered.
  std::size_t deliver();

 private:
  std::size_t deliver_from(LoopbackTransport& from, LoopbackTransport& to);
  LoopbackTransport a_, b_;
  AssocId next_id_ = 1;
};

}  // namespace transport
