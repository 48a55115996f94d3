#include "src/transport/assoc_slot.hpp"

#include <algorithm>

namespace transport {

const char* association_state(SlotState state) {
  switch (state) {
    case SlotState::ready:
      return "established";
    case SlotState::connecting:
      return "connecting";
    case SlotState::draining:
      return "closing";
    case SlotState::closed:
      return "closed";
  }
  return "closed";
}

const char* to_string(SlotState state) {
  switch (state) {
    case SlotState::closed:
      return "closed";
    case SlotState::connecting:
      return "connecting";
    case SlotState::ready:
      return "ready";
    case SlotState::draining:
      return "draining";
  }
  return "?";
}

const char* to_string(SlotEvent event) {
  switch (event) {
    case SlotEvent::connect:
      return "connect";
    case SlotEvent::comm_up:
      return "comm_up";
    case SlotEvent::lost:
      return "lost";
    case SlotEvent::abort:
      return "abort";
    case SlotEvent::shutdown:
      return "shutdown";
    case SlotEvent::socket_closed:
      return "socket_closed";
  }
  return "?";
}

std::optional<SlotState> next_state(SlotState state, SlotEvent event) {
  using S = SlotState;
  using E = SlotEvent;
  switch (state) {
    case S::closed:
      if (event == E::connect) return S::connecting;
      break;
    case S::connecting:
      if (event == E::comm_up) return S::ready;
      if (event == E::lost) return S::closed;
      if (event == E::abort || event == E::shutdown) return S::draining;
      break;
    case S::ready:
      if (event == E::comm_up) return S::ready;
      if (event == E::lost) return S::closed;
      if (event == E::abort || event == E::shutdown) return S::draining;
      break;
    case S::draining:
      if (event == E::lost || event == E::socket_closed) return S::closed;
      if (event == E::shutdown) return S::draining;
      break;
  }
  return std::nullopt;
}

bool AssocSlot::on(SlotEvent event) {
  std::optional<SlotState> next = next_state(state_, event);
  if (!next) return false;
  if (event == SlotEvent::connect) ++connects_;
  if (event == SlotEvent::comm_up) {
    ++ups_;
    backoff_ = 0;
    failed_connects_ = 0;
  }
  if (state_ == SlotState::connecting && *next == SlotState::closed) ++failed_connects_;
  state_ = *next;
  return true;
}

double AssocSlot::peek_backoff() const {
  return std::clamp(backoff_ * 2, backoff_options_.min, backoff_options_.max);
}

double AssocSlot::next_backoff() {
  backoff_ = peek_backoff();
  return backoff_;
}

void AssocSlot::hold_off(double seconds) {
  backoff_ = std::max(backoff_, std::min(seconds, backoff_options_.max) / 2);
}

}  // namespace transport
