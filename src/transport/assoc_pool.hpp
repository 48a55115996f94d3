#pragma once
// AssocPool: the association pool of one transport, every peer's slots. A peer has `pool` slots
// (config [[peer]] pool, 1..16, default 2); slot i is one SCTP association between our SCTP port
// base+i and the peer's port base+i (both gateways connect slot i to slot i, so the slots pair up
// whatever the start order). Slots are established at start and kept ready, so a new flow takes a
// ready association and a free stream at once, with no handshake in its way; a lost slot is
// re-established with backoff.
//
// Each slot is an AssocLink record (assoc_link.hpp) with an AssocSlot state machine
// (assoc_slot.hpp). The backend owns the records (deriving its own from AssocLink) and registers
// them here; the pool does what every backend does alike:
//  - lookup: by AssocId (send, abort: a scan of the records, no allocation) and by (peer, slot)
//    (an incoming packet or association names its slot by its SCTP port);
//  - the slot's transitions, logged;
//  - the association's life as the gateway sees it (Events): up (a fresh AssocId, never reused;
//    a restart takes the old one down first), shutdown by the peer, lost, aborted by us;
//  - when to connect again: the backoff after a loss, the hold-off after an abort;
//  - the fields of `sctptund show`'s association listing that every backend fills alike.
// The backend keeps its sockets and timers: it calls the pool on its stack's events and arms its
// reconnect timer with the delays the pool returns.
//
// Pure logic: no sockets, no timers, no clock reads. Time is passed in (Time::now() in the
// backends, fake time in tests).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/base/rate_limit.hpp"
#include "src/transport/assoc_link.hpp"
#include "src/transport/assoc_slot.hpp"
#include "src/transport/time.hpp"
#include "src/transport/transport.hpp"

namespace transport {

// What an SCTP_ASSOC_CHANGE notification reports (RFC 6458 6.1.1). usrsctp and the kernel's
// <netinet/sctp.h> name the states alike but number them differently: a backend maps its
// sac_state with assoc_change() and its own numbers.
enum class AssocChange : std::uint8_t {
  comm_up,
  restart,
  comm_lost,
  shutdown_comp,
  cant_start,
  other
};
struct AssocChangeStates {
  unsigned comm_up, restart, comm_lost, shutdown_comp, cant_str_assoc;
};
constexpr AssocChange assoc_change(const AssocChangeStates& api, unsigned state) {
  if (state == api.comm_up) return AssocChange::comm_up;
  if (state == api.restart) return AssocChange::restart;
  if (state == api.comm_lost) return AssocChange::comm_lost;
  if (state == api.shutdown_comp) return AssocChange::shutdown_comp;
  if (state == api.cant_str_assoc) return AssocChange::cant_start;
  return AssocChange::other;
}
// The association is (again) up: COMM_UP or RESTART.
constexpr bool is_up(AssocChange change) {
  return change == AssocChange::comm_up || change == AssocChange::restart;
}
// Why the slot has no association after change ("communication lost", "shut down by peer",
// "peer unreachable"); nullptr when change does not end one.
const char* down_reason(AssocChange change);

class AssocPool {
 public:
  // backoff: every slot's reconnect backoff; its max is also the hold-off after an abort.
  // base_port: the SCTP port of slot 0.
  AssocPool(BackoffOptions backoff, std::uint16_t base_port);

  void set_events(Events* events) { events_ = events; }

  // The next peer (PeerId order); its name prefixes the pool's log lines.
  PeerId add_peer(std::string name);
  // Makes link the peer's next slot: sets peer, slot, port and a fresh machine. The pool keeps a
  // pointer to link, which the backend owns and keeps at this address while the pool lives.
  void add(AssocLink& link, PeerId peer);

  // The slot whose association is assoc; nullptr for 0 or an id no slot holds (any more).
  AssocLink* find(AssocId assoc) const {
    if (assoc == 0) return nullptr;
    for (AssocLink* link : links_) {
      if (link->assoc == assoc) return link;
    }
    return nullptr;
  }
  // Slot `slot` of the peer; nullptr when the peer has no such slot (its pool is smaller).
  AssocLink* at(PeerId peer, std::size_t slot) const;
  std::size_t slots(PeerId peer) const { return peers_.at(peer).slots.size(); }
  bool any_ready(PeerId peer) const;
  const std::string& name(PeerId peer) const { return peers_.at(peer).name; }
  // The hold-off after an abort, seconds (the backoff's max).
  double hold_off() const { return backoff_.max; }

  // Feeds event to link's machine and logs the change; false (nothing changed; logged once per
  // 10 s per peer, in the latest time the pool was handed) when the table does not allow it.
  bool transition(AssocLink& link, SlotEvent event);

  // The association of link is established (change: comm_up) or was restarted by the peer
  // (restart): a new AssocId with these stream counts; the previous one, if any, goes down first
  // (on_assoc_down), then on_assoc_up. Logged as "association N (slot, SCTP port) <how><where>"
  // (within the slot's change_log limit, as is lost()'s line). False when the slot cannot take it
  // (a draining or closed slot): nothing changed.
  bool up(AssocLink& link, std::uint16_t in_streams, std::uint16_t out_streams, const char* how,
          const std::string& where, Time now);
  // SHUTDOWN from the peer: the slot drains; its association (if any) goes down.
  void shutdown(AssocLink& link);
  // The association is gone or never came up (why: for the log): the slot is closed, its
  // association (if any) goes down. A slot that keeps failing while others of the peer work is
  // logged once (the peer's pool is probably smaller). Returns the delay before the next connect
  // attempt (schedule_reconnect). The backend has closed its socket or closes it after.
  double lost(AssocLink& link, const char* why, Time now);
  // We end the association (a protocol violation): logged, the slot drains, its association goes
  // down, and no connect starts before now + hold_off() (ours or for the peer's INIT).
  void abort(AssocLink& link, const char* reason, Time now);

  // Decides the next connect attempt of a slot without socket: after the next backoff delay, and
  // not within a hold-off. Returns the delay from now (seconds); link.reconnect_at is now + delay.
  double schedule_reconnect(AssocLink& link, Time now);
  // Seconds until a connect may start (0: now): what is left of a hold-off after an abort.
  double held_for(const AssocLink& link, Time now) const;

  // The listing's fields every backend fills alike: id, peer, state, slot, pool state, streams,
  // message and byte counters.
  AssocInfo info(const AssocLink& link) const;

  // Whether a line about link's association or socket may be logged now (its change_log); if
  // not, counts it in changes_unlogged. When it may, unlogged is the count to report in it (reset).
  static bool may_log_change(AssocLink& link, Time now, std::uint64_t& unlogged);

 private:
  struct Peer {
    std::string name;
    std::vector<AssocLink*> slots;  // index = slot
    // Aborts are logged once per 10 s per peer (a peer with the wrong key makes one per slot
    // each hold-off); the line says how many went unlogged since the last.
    base::RateLimit abort_log{10};
    std::uint64_t aborts_unlogged = 0;
    base::RateLimit illegal_log{10};  // of the "event is illegal in state" line
    std::uint64_t illegal_unlogged = 0;
  };

  // Remembers now as the latest time the pool was handed (up, lost, abort, schedule_reconnect):
  // transition(), called without one, limits its line in it.
  void saw(Time now) {
    if (now - latest_ > 0) latest_ = now;
  }

  BackoffOptions backoff_;
  std::uint16_t base_port_;
  Time latest_;
  Events* events_ = nullptr;
  std::vector<Peer> peers_;        // index = PeerId
  std::vector<AssocLink*> links_;  // every slot of every peer, in the order added
  AssocId next_assoc_id_ = 1;
};

}  // namespace transport
