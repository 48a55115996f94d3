#pragma once
// AssocSlot: the state of one slot of an association pool (assoc_pool.hpp), a small explicit
// state machine, pure logic (no sockets, no clock): the transport feeds it events and asks it for
// the state.
//
// Transition table (anything not listed is illegal: AssocSlot::on() returns false and leaves the
// state unchanged):
//
//   state       event           next        when
//   ----------  --------------  ----------  ---------------------------------------------------
//   closed      connect         connecting  a socket was opened and INIT sent (start, reconnect)
//   connecting  comm_up         ready       the association is established (COMM_UP)
//   connecting  lost            closed      the handshake failed (peer unreachable, socket error)
//   connecting  abort           draining    we give up on it (socket closes from a zero timer)
//   connecting  shutdown        draining    SHUTDOWN from the peer or we are stopping
//   ready       comm_up         ready       the peer restarted the association (SCTP_RESTART):
//                                           a new association id, the old one went down
//   ready       lost            closed      communication lost, ABORT from the peer
//   ready       abort           draining    we abort it (malformed HELLO, protocol violation)
//   ready       shutdown        draining    SHUTDOWN from the peer or we are stopping
//   draining    lost            closed      the shutdown completed or the association died
//   draining    socket_closed   closed      we closed the socket
//   draining    shutdown        draining    (repeated SHUTDOWN: no change)
//
// Only a ready slot carries flows. Leaving ready (lost, abort, shutdown) is "association down"
// for the gateway: its flows are unbound and rebound to another ready slot by their next packet.
// Entering closed arms the reconnect backoff: the delay doubles from backoff_min up to
// backoff_max, and reaching ready resets it. A slot the peer does not have (the two gateways
// configured with different pool sizes) simply never gets past connecting: it keeps retrying with
// the backoff while the common slots work; the pool logs that once.

#include <cstdint>
#include <optional>

namespace transport {

enum class SlotState : std::uint8_t { closed, connecting, ready, draining };
enum class SlotEvent : std::uint8_t { connect, comm_up, lost, abort, shutdown, socket_closed };

const char* to_string(SlotState state);
// The association's state as `sctptund show` names it: established, connecting, closing, closed.
const char* association_state(SlotState state);
const char* to_string(SlotEvent event);

// The next state for (state, event), or nullopt when the transition is illegal.
std::optional<SlotState> next_state(SlotState state, SlotEvent event);

struct BackoffOptions {
  double min = 0.1, max = 2.0;  // seconds
};

class AssocSlot {
 public:
  explicit AssocSlot(BackoffOptions backoff = {}) : backoff_options_(backoff) {}

  SlotState state() const { return state_; }
  bool ready() const { return state_ == SlotState::ready; }
  // Applies event; false (and no change) if the table does not allow it.
  bool on(SlotEvent event);

  // Seconds to wait before the next connect attempt; each call doubles the next one (bounded).
  double next_backoff();
  // The delay the next call of next_backoff() would return, without consuming it.
  double peek_backoff() const;
  // Sets the backoff so that the next delay is at least seconds (abort: do not hammer the peer).
  void hold_off(double seconds);

  std::uint64_t connects() const { return connects_; }  // connect events so far
  std::uint64_t ups() const { return ups_; }            // comm_up events so far (ready entries)
  std::uint64_t failed_connects() const {
    return failed_connects_;
  }  // connecting -> closed in a row

 private:
  BackoffOptions backoff_options_;
  SlotState state_ = SlotState::closed;
  double backoff_ = 0;  // the last delay handed out; 0: none yet or reset by ready
  std::uint64_t connects_ = 0, ups_ = 0, failed_connects_ = 0;
};

}  // namespace transport
