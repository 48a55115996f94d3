#pragma once
// AssocLink: the record of one slot of an association pool (assoc_pool.hpp), the part every
// backend has: which slot of which peer, its state machine, the association it carries while
// ready, the pool's hold-off and reconnect decisions, and the counters `sctptund show` lists. A
// backend extends it with what is its own (a struct deriving from AssocLink: usrsctp's socket and
// paths, the kernel's association id). The pool sets peer, slot, port and the machine (add); the
// rest it changes in its transitions, except the counters and `blocked`, which the backend's send
// and receive paths keep (inline, no call per message).

#include <cstddef>
#include <cstdint>

#include "src/base/rate_limit.hpp"
#include "src/transport/assoc_slot.hpp"
#include "src/transport/time.hpp"
#include "src/transport/transport.hpp"

namespace transport {

struct AssocLink {
  PeerId peer = 0;
  std::uint16_t slot = 0;  // index in the peer's pool
  std::uint16_t port = 0;  // the slot's SCTP port, both ends: the pool's base port + slot
  AssocSlot machine;
  AssocId assoc = 0;                              // ours, while ready (0: none)
  std::uint16_t in_streams = 0, out_streams = 0;  // of the association, as it came up
  Time hold_until;       // after an abort: no connect (ours or for the peer's INIT) before this
  Time reconnect_at;     // the pool's last decision: when the next connect attempt is due
  bool blocked = false;  // a send returned would_block: on_writable is owed
  bool mismatch_logged = false;  // "is the peer's pool smaller?" said once
  // Its association coming up or being lost, and its socket failing to open, are logged at most
  // twice per 10 s (a peer that opens and aborts associations, or INITs for a slot whose socket
  // cannot open, must not flood the log); the next line says how many went unlogged since.
  base::RateLimit change_log{10, 2};
  std::uint64_t changes_unlogged = 0;
  std::uint64_t sent_messages = 0, sent_bytes = 0, received_messages = 0, received_bytes = 0;

  void count_sent(std::size_t bytes) {
    ++sent_messages;
    sent_bytes += bytes;
  }
  void count_received(std::size_t bytes) {
    ++received_messages;
    received_bytes += bytes;
  }
};

}  // namespace transport
