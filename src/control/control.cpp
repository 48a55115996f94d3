#include "src/control/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "src/base/log.hpp"

namespace control {
namespace {

sockaddr_un make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

void make_parent_directory(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  std::string dir = path.substr(0, slash);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create " + dir + ": " + std::strerror(errno));
}

bool someone_listens(const sockaddr_un& addr) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return live;
}

}  // namespace

ParsedRequest parse_request(std::string_view received, bool closed) {
  using Kind = ParsedRequest::Kind;
  std::size_t newline = received.find('\n');
  std::string_view line = received.substr(0, newline);
  if (line.size() > kMaxRequest) return {Kind::too_long, {}};
  if (newline == std::string_view::npos && !closed) return {Kind::incomplete, {}};
  if (line.empty()) return {Kind::empty, {}};
  return {Kind::line, line};
}

struct ControlServer::Client {
  int fd = -1;
  std::string request, reply;
  std::size_t sent = 0;  // bytes of reply written
  std::unique_ptr<base::IoWatcher> watch, writable;
  std::unique_ptr<base::Timer> deadline;
};

ControlServer::ControlServer(base::EventLoop& loop, std::string path, Handler handler)
    : loop_(loop), path_(std::move(path)), handler_(std::move(handler)) {
  sockaddr_un addr = make_address(path_);
  make_parent_directory(path_);
  if (someone_listens(addr))
    throw std::runtime_error("control socket " + path_ + " is in use by a running daemon");
  unlink(path_.c_str());
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("control socket: ") + std::strerror(errno));
  // The mode comes from the umask at bind() (0600): nothing changes it by path afterwards, where
  // a link put in its place would be followed.
  mode_t old_mask = umask(0177);
  int rc = bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  umask(old_mask);
  if (rc != 0 || listen(fd_, 16) != 0) {
    std::string err = std::strerror(errno);
    close(fd_);
    throw std::runtime_error("control socket " + path_ + ": " + err);
  }
  accept_watch_ =
      std::make_unique<base::IoWatcher>(loop, fd_, base::kRead, [this](int) { on_accept(); });
  accept_watch_->start();
}

ControlServer::~ControlServer() {
  for (auto& client : clients_) {
    if (client->fd >= 0) close(client->fd);
  }
  accept_watch_.reset();
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

void ControlServer::on_accept() {
  std::erase_if(clients_, [](const auto& c) { return c->fd < 0; });
  for (int i = 0; i < 16; ++i) {
    int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    auto client = std::make_unique<Client>();
    client->fd = fd;
    Client* raw = client.get();
    client->watch = std::make_unique<base::IoWatcher>(loop_, fd, base::kRead,
                                                      [this, raw](int) { on_client(*raw); });
    client->deadline = std::make_unique<base::Timer>(loop_, 5, 0, [this, raw] { finish(*raw); });
    client->watch->start();
    client->deadline->start();
    clients_.push_back(std::move(client));
  }
}

void ControlServer::on_client(Client& client) {
  char buf[512];
  ssize_t n = read(client.fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) client.request.append(buf, static_cast<std::size_t>(n));
  ParsedRequest parsed = parse_request(client.request, n <= 0);
  if (parsed.kind == ParsedRequest::Kind::incomplete) return;
  if (parsed.kind == ParsedRequest::Kind::empty) {
    finish(client);
    return;
  }
  client.reply = parsed.kind == ParsedRequest::Kind::too_long ? std::string(kTooLongReply)
                                                              : handler_(parsed.request);
  client.watch->stop();
  Client* raw = &client;
  client.writable = std::make_unique<base::IoWatcher>(loop_, client.fd, base::kWrite,
                                                      [this, raw](int) { on_writable(*raw); });
  on_writable(client);
}

// Writes what the socket takes without blocking; the rest when it is writable again. A reader
// that takes longer than the client's deadline (5 s from its connection) is cut off.
void ControlServer::on_writable(Client& client) {
  while (client.sent < client.reply.size()) {
    ssize_t w = send(client.fd, client.reply.data() + client.sent,
                     client.reply.size() - client.sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!client.writable->active()) client.writable->start();
      return;
    }
    if (w <= 0) break;  // the reader went away
    client.sent += static_cast<std::size_t>(w);
  }
  finish(client);
}

void ControlServer::finish(Client& client) {
  // Called from the client's own watcher or timer: stop and close now, free at the next accept.
  client.watch->stop();
  if (client.writable) client.writable->stop();
  client.deadline->stop();
  close(client.fd);
  client.fd = -1;
}

std::string request(const std::string& path, std::string_view line, double timeout_seconds) {
  sockaddr_un addr = make_address(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    std::string err = std::strerror(errno);
    close(fd);
    throw std::runtime_error("cannot reach the daemon at " + path + ": " + err +
                             " (is sctptund running?)");
  }
  std::string out(line);
  out += '\n';
  if (write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    close(fd);
    throw std::runtime_error("cannot send the request to " + path);
  }
  std::string reply;
  char buf[4096];
  int timeout_ms = static_cast<int>(timeout_seconds * 1000);
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) {
      close(fd);
      throw std::runtime_error("no reply from the daemon at " + path + " within the timeout");
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return reply;
}

}  // namespace control
