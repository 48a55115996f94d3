#pragma once
// The control socket: a Unix stream socket (mode 0600) on which the daemon answers one request
// per connection. Requests are one line of text; the reply is text, then the daemon closes.
// Nothing here blocks the event loop: a reply is written as fast as the client reads it, and a
// client that has not read all of it within 5 s of connecting is disconnected.
//
//   show         human-readable status (peers, associations, paths, flows, counters)
//   show json    the same as JSON (schema in man/sctptund.8)
//   ping         "pong"
// Unknown requests get "error: unknown request '...'" (commands.hpp, handle); a request longer
// than kMaxRequest bytes gets kTooLongReply.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/event_loop.hpp"

namespace control {

// The longest request line the server takes (bytes before the newline).
inline constexpr std::size_t kMaxRequest = 4096;
inline constexpr std::string_view kTooLongReply = "error: request too long (at most 4096 bytes)\n";

// What the bytes a client sent so far amount to; the server reads until a newline. closed: the
// client sent all it will (end of stream, or a read error).
//   incomplete  no newline yet, at most kMaxRequest bytes, and the client may send more: read on
//   empty       an empty line, or nothing at all: the connection is closed without a reply
//   line        request = the bytes before the first newline (all of them when closed without
//               one), 1..kMaxRequest bytes
//   too_long    more than kMaxRequest bytes before the first newline (or the end): refused with
//               kTooLongReply
struct ParsedRequest {
  enum class Kind { incomplete, empty, line, too_long };
  Kind kind = Kind::incomplete;
  std::string_view request;  // within received; set for Kind::line
};
ParsedRequest parse_request(std::string_view received, bool closed);

class ControlServer {
 public:
  using Handler = std::function<std::string(std::string_view request)>;
  // Creates the socket (and its directory); a stale socket file left by a dead daemon is
  // replaced, a live one is an error. Throws std::runtime_error.
  ControlServer(base::EventLoop& loop, std::string path, Handler handler);
  ~ControlServer();
  const std::string& path() const { return path_; }

 private:
  struct Client;
  void on_accept();
  void on_client(Client& client);
  void on_writable(Client& client);
  void finish(Client& client);

  base::EventLoop& loop_;
  std::string path_;
  Handler handler_;
  int fd_ = -1;
  std::unique_ptr<base::IoWatcher> accept_watch_;
  std::vector<std::unique_ptr<Client>> clients_;
};

// Client side: sends one request and returns the whole reply. Throws std::runtime_error with a
// message that says whether the daemon is not running or not reachable.
std::string request(const std::string& path, std::string_view line, double timeout_seconds = 5);

}  // namespace control
