#include "src/control/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace control::sd_notify {
namespace {

std::atomic<bool> g_ready_sent{false};

// The socket's address from $NOTIFY_SOCKET; false when unset or not an AF_UNIX name (systemd 253+
// may also pass "vsock:CID:PORT", for a VM's manager, which a gateway daemon never needs).
bool notify_address(sockaddr_un& addr, socklen_t& len) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr) return false;
  std::string_view path(env);
  if (path.size() < 2 || (path[0] != '/' && path[0] != '@') || path.size() >= sizeof addr.sun_path)
    return false;
  addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract: the length, not a NUL, ends the name
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  return true;
}

bool has_line(std::string_view state, std::string_view line) {
  while (!state.empty()) {
    std::size_t end = state.find('\n');
    if (state.substr(0, end) == line) return true;
    if (end == std::string_view::npos) break;
    state.remove_prefix(end + 1);
  }
  return false;
}

}  // namespace

bool enabled() {
  sockaddr_un addr;
  socklen_t len;
  return notify_address(addr, len);
}

bool send(std::string_view state) {
  sockaddr_un addr;
  socklen_t len;
  if (!notify_address(addr, len)) return false;
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                          reinterpret_cast<const sockaddr*>(&addr), len);
  ::close(fd);
  bool ok = sent >= 0 && static_cast<std::size_t>(sent) == state.size();
  if (ok && has_line(state, "READY=1")) g_ready_sent = true;
  return ok;
}

bool ready_sent() {
  return g_ready_sent;
}

std::string Readiness::status(std::size_t assocs_ready, std::size_t peers_up, std::size_t peers) {
  std::string of = std::to_string(peers_up) + " of " + std::to_string(peers) + " peer(s) up";
  if (assocs_ready == 0) return "waiting for peers: " + of;
  return "tunnel up: " + std::to_string(assocs_ready) + " association(s) ready, " + of;
}

std::string Readiness::update(std::size_t assocs_ready, std::size_t peers_up, std::size_t peers,
                              double elapsed_s) {
  std::string text = status(assocs_ready, peers_up, peers);
  std::string message;
  if (!ready_ && (assocs_ready > 0 || elapsed_s >= max_wait_s_)) {
    ready_ = true;
    message = "READY=1\n";
  } else if (reported_ == text) {
    return {};
  }
  reported_ = text;
  return message + "STATUS=" + text;
}

ReloadScope::ReloadScope() : active_(ready_sent()) {
  if (!active_) return;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  unsigned long long usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                            static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

ReloadScope::~ReloadScope() {
  if (active_) send("READY=1");
}

}  // namespace control::sd_notify
