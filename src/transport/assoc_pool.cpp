#include "src/transport/assoc_pool.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "src/base/log.hpp"

namespace transport {

const char* down_reason(AssocChange change) {
  switch (change) {
    case AssocChange::comm_lost:
      return "communication lost";
    case AssocChange::shutdown_comp:
      return "shut down by peer";
    case AssocChange::cant_start:
      return "peer unreachable";
    case AssocChange::comm_up:
    case AssocChange::restart:
    case AssocChange::other:
      break;
  }
  return nullptr;
}

AssocPool::AssocPool(BackoffOptions backoff, std::uint16_t base_port)
    : backoff_(backoff), base_port_(base_port) {}

PeerId AssocPool::add_peer(std::string name) {
  peers_.push_back({std::move(name), {}});
  return static_cast<PeerId>(peers_.size() - 1);
}

void AssocPool::add(AssocLink& link, PeerId peer) {
  std::vector<AssocLink*>& slots = peers_.at(peer).slots;
  link.peer = peer;
  link.slot = static_cast<std::uint16_t>(slots.size());
  link.port = static_cast<std::uint16_t>(base_port_ + slots.size());
  link.machine = AssocSlot(backoff_);
  slots.push_back(&link);
  links_.push_back(&link);
}

AssocLink* AssocPool::at(PeerId peer, std::size_t slot) const {
  if (peer >= peers_.size()) return nullptr;
  const std::vector<AssocLink*>& slots = peers_[peer].slots;
  return slot < slots.size() ? slots[slot] : nullptr;
}

bool AssocPool::any_ready(PeerId peer) const {
  const std::vector<AssocLink*>& slots = peers_.at(peer).slots;
  return std::any_of(slots.begin(), slots.end(),
                     [](const AssocLink* l) { return l->machine.ready(); });
}

bool AssocPool::transition(AssocLink& link, SlotEvent event) {
  SlotState from = link.machine.state();
  if (!link.machine.on(event)) {
    Peer& peer = peers_.at(link.peer);
    if (peer.illegal_log.allow(latest_.seconds())) {
      LOG_WARN(
          "peer %s: slot %u: event %s is illegal in state %s (ignored; %llu such events not "
          "logged since the last line)",
          peer.name.c_str(), link.slot, to_string(event), to_string(from),
          static_cast<unsigned long long>(peer.illegal_unlogged));
      peer.illegal_unlogged = 0;
    } else {
      ++peer.illegal_unlogged;
    }
    return false;
  }
  if (from != link.machine.state())
    LOG_DEBUG("peer %s: slot %u: %s -> %s (%s)", name(link.peer).c_str(), link.slot,
              to_string(from), to_string(link.machine.state()), to_string(event));
  return true;
}

bool AssocPool::may_log_change(AssocLink& link, Time now, std::uint64_t& unlogged) {
  if (!link.change_log.allow(now.seconds())) {
    ++link.changes_unlogged;
    return false;
  }
  unlogged = link.changes_unlogged;
  link.changes_unlogged = 0;
  return true;
}

namespace {
// The tail of a rate-limited slot line: "" when nothing went unlogged (the usual case).
std::string unlogged_note(std::uint64_t unlogged) {
  if (!unlogged) return "";
  return " (" + std::to_string(unlogged) + " more of this slot's lines not logged since the last)";
}
}  // namespace

bool AssocPool::up(AssocLink& link, std::uint16_t in_streams, std::uint16_t out_streams,
                   const char* how, const std::string& where, Time now) {
  saw(now);
  if (!transition(link, SlotEvent::comm_up)) return false;
  if (link.assoc && events_) events_->on_assoc_down(link.assoc);
  link.assoc = next_assoc_id_++;
  link.in_streams = in_streams;
  link.out_streams = out_streams;
  if (std::uint64_t unlogged = 0; may_log_change(link, now, unlogged))
    LOG_INFO("peer %s: association %llu (slot %u, SCTP port %u) %s%s%s", name(link.peer).c_str(),
             static_cast<unsigned long long>(link.assoc), link.slot, link.port, how, where.c_str(),
             unlogged_note(unlogged).c_str());
  if (events_) events_->on_assoc_up(link.assoc, link.peer, link.out_streams);
  return true;
}

void AssocPool::shutdown(AssocLink& link) {
  LOG_DEBUG("peer %s: slot %u: shutdown received", name(link.peer).c_str(), link.slot);
  AssocId was = link.assoc;
  link.assoc = 0;
  transition(link, SlotEvent::shutdown);  // no longer ready: flows move to other slots
  if (was && events_) events_->on_assoc_down(was);
}

double AssocPool::lost(AssocLink& link, const char* why, Time now) {
  saw(now);
  AssocId was = link.assoc;
  link.assoc = 0;
  link.blocked = false;
  if (link.machine.state() != SlotState::closed) transition(link, SlotEvent::lost);
  if (was) {
    if (std::uint64_t unlogged = 0; may_log_change(link, now, unlogged))
      LOG_INFO("peer %s: association %llu (slot %u) lost (%s)%s", name(link.peer).c_str(),
               static_cast<unsigned long long>(was), link.slot, why,
               unlogged_note(unlogged).c_str());
    if (events_) events_->on_assoc_down(was);
  } else {
    LOG_DEBUG("peer %s: slot %u: no association (%s), retrying", name(link.peer).c_str(), link.slot,
              why);
    // A slot that never comes up while another of the peer's is ready: the peer's pool is
    // probably smaller than ours. Keep retrying (with backoff), but say so once.
    if (!link.mismatch_logged && link.machine.failed_connects() >= 3 && any_ready(link.peer)) {
      link.mismatch_logged = true;
      LOG_WARN(
          "peer %s: slot %u (SCTP port %u) cannot connect while other slots work: is the "
          "peer's pool smaller? retrying with backoff",
          name(link.peer).c_str(), link.slot, link.port);
    }
  }
  return schedule_reconnect(link, now);
}

void AssocPool::abort(AssocLink& link, const char* reason, Time now) {
  saw(now);
  AssocId was = link.assoc;
  Peer& peer = peers_.at(link.peer);
  if (peer.abort_log.allow(now.seconds())) {
    LOG_WARN(
        "peer %s: aborting association %llu: %s (%llu more aborts not logged since the last "
        "line)",
        peer.name.c_str(), static_cast<unsigned long long>(was), reason,
        static_cast<unsigned long long>(peer.aborts_unlogged));
    peer.aborts_unlogged = 0;
  } else {
    ++peer.aborts_unlogged;
  }
  link.assoc = 0;
  link.blocked = false;
  transition(link, SlotEvent::abort);
  if (was && events_) events_->on_assoc_down(was);
  link.machine.hold_off(hold_off());
  link.hold_until = now + hold_off();
}

double AssocPool::schedule_reconnect(AssocLink& link, Time now) {
  saw(now);
  double delay = std::max(link.machine.next_backoff(), held_for(link, now));
  link.reconnect_at = now + delay;
  return delay;
}

double AssocPool::held_for(const AssocLink& link, Time now) const {
  return std::max(0.0, link.hold_until - now);
}

// path, paths and window are the backend's to fill.
AssocInfo AssocPool::info(const AssocLink& link) const {
  SlotState state = link.machine.state();
  return {.id = link.assoc,
          .peer = link.peer,
          .state = association_state(state),
          .slot = link.slot,
          .pool_state = to_string(state),
          .path = {},
          .in_streams = link.in_streams,
          .out_streams = link.out_streams,
          .sent_messages = link.sent_messages,
          .sent_bytes = link.sent_bytes,
          .received_messages = link.received_messages,
          .received_bytes = link.received_bytes,
          .paths = {},
          .window = {}};
}

}  // namespace transport
