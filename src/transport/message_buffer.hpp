#pragma once
// MessageBuffer: one SCTP message (or notification) read from a socket in parts. Each read takes
// what fits in room(); the socket marks the read that ends a message (MSG_EOR). A message larger
// than the buffer (larger than any message we accept) is dropped whole: its parts are discarded up
// to its end. One buffer, made once and reused for every message: no allocation per message.
//
//   for (;;) {
//     n = read(buf.room())
//     switch (buf.add(n, flags & MSG_EOR)) { more: continue; whole: use buf.msg(); dropped: count }
//     buf.clear();
//   }

#include <cstddef>
#include <cstdint>
#include <span>

#include "tun/packet_buf.hpp"

namespace transport {

class MessageBuffer {
 public:
  enum class Part : std::uint8_t {
    more,     // the message goes on: read again
    whole,    // msg() holds a complete message
    dropped,  // the end of a message too large to keep (msg() holds only its last parts)
  };

  // Where the next read writes.
  std::span<std::uint8_t> room() { return buf_.tailroom().subspan(buf_.size()); }
  // Takes the n bytes just read into room(); end: that read ended the message.
  Part add(std::size_t n, bool end) {
    buf_.set_size(buf_.size() + n);
    if (end) return discarding_ ? Part::dropped : Part::whole;
    if (buf_.size() == buf_.tailroom().size()) {  // full, and the message goes on
      discarding_ = true;
      buf_.reset();
    }
    return Part::more;
  }
  // The message; the reader may modify it (strip or prepend headers) until clear().
  tun::PacketBuf& msg() { return buf_; }
  // Empty, for the next message (after whole or dropped, or when the socket is gone).
  void clear() {
    discarding_ = false;
    buf_.reset();
  }

 private:
  tun::PacketBuf buf_;
  bool discarding_ = false;  // dropping the rest of an oversized message
};

}  // namespace transport
