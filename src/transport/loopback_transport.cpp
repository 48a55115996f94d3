#include "src/transport/loopback_transport.hpp"

namespace transport {

SendResult LoopbackTransport::send(AssocId assoc, std::uint16_t stream,
                                   std::span<const std::uint8_t> msg, SendOptions options) {
  if (assoc == 0 || assoc != assoc_) return SendResult::closed;
  if (stream >= out_streams_) return SendResult::error;
  if (outbox_.size() >= capacity) {
    blocked_ = true;
    return SendResult::would_block;
  }
  outbox_.push_back({assoc, stream, {msg.begin(), msg.end()}});
  sent_log.emplace_back(stream, std::vector<std::uint8_t>(msg.begin(), msg.end()));
  sent_redundant.push_back(options.redundant);
  return SendResult::ok;
}

void LoopbackTransport::abort(AssocId assoc, const char*) {
  if (assoc != assoc_) return;
  ++aborts;
  if (link_) link_->down();
}

std::vector<AssocInfo> LoopbackTransport::associations() const {
  if (!assoc_) return {};
  AssocInfo info;
  info.id = assoc_;
  info.state = "established";
  info.out_streams = out_streams_;
  return {info};
}

LoopbackLink::LoopbackLink() {
  a_.link_ = this;
  b_.link_ = this;
}

void LoopbackLink::up(std::uint16_t streams_a_to_b, std::uint16_t streams_b_to_a) {
  a_.assoc_ = next_id_++;
  b_.assoc_ = next_id_++;
  a_.out_streams_ = streams_a_to_b;
  b_.out_streams_ = streams_b_to_a;
  if (a_.events_) a_.events_->on_assoc_up(a_.assoc_, 0, streams_a_to_b);
  if (b_.events_) b_.events_->on_assoc_up(b_.assoc_, 0, streams_b_to_a);
}

void LoopbackLink::down() {
  for (LoopbackTransport* t : {&a_, &b_}) {
    AssocId id = t->assoc_;
    if (!id) continue;
    t->assoc_ = 0;
    t->outbox_.clear();
    if (t->events_) t->events_->on_assoc_down(id);
  }
}

std::size_t LoopbackLink::deliver_from(LoopbackTransport& from, LoopbackTransport& to) {
  std::size_t n = 0;
  tun::PacketBuf buf;
  while (!from.outbox_.empty() && to.assoc_) {
    LoopbackTransport::Queued queued = std::move(from.outbox_.front());
    from.outbox_.pop_front();
    buf.assign(queued.bytes);
    if (to.events_) to.events_->on_message(to.assoc_, queued.stream, buf);
    ++n;
  }
  return n;
}

std::size_t LoopbackLink::deliver() {
  std::size_t total = 0;
  for (int round = 0; round < 1000; ++round) {
    std::size_t n = deliver_from(a_, b_) + deliver_from(b_, a_);
    for (LoopbackTransport* t : {&a_, &b_}) {
      if (t->blocked_ && t->outbox_.size() < t->capacity) {
        t->blocked_ = false;
        if (t->events_) t->events_->on_writable();
        ++n;
      }
    }
    total += n;
    if (n == 0) break;
  }
  return total;
}

}  // namespace transport
