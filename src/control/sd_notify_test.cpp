#include "src/control/sd_notify.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <random>
#include <string>

namespace {

// A datagram socket standing in for systemd's notification socket; sets $NOTIFY_SOCKET to it for
// its lifetime. name: a file path, or "@..." for the abstract namespace.
class FakeManager {
 public:
  explicit FakeManager(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(name.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) == 0);
    REQUIRE(setenv("NOTIFY_SOCKET", name.c_str(), 1) == 0);
  }
  ~FakeManager() {
    unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  // The next datagram, or nothing within a second.
  std::optional<std::string> receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  bool idle() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

 private:
  std::string name_;
  int fd_ = -1;
};

std::string temp_dir() {
  char dir[] = "/tmp/sctptund-sdnotify-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return dir;
}

}  // namespace

TEST_CASE("sd_notify: no NOTIFY_SOCKET, nothing to notify") {
  unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(control::sd_notify::enabled());
  CHECK_FALSE(control::sd_notify::send("READY=1"));
  setenv("NOTIFY_SOCKET", "", 1);
  CHECK_FALSE(control::sd_notify::send("READY=1"));
  setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);  // not an AF_UNIX socket: ignored
  CHECK_FALSE(control::sd_notify::enabled());
  CHECK_FALSE(control::sd_notify::send("READY=1"));
  unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("sd_notify: a datagram to a socket file") {
  std::string dir = temp_dir();
  {
    FakeManager manager(dir + "/notify");
    CHECK(control::sd_notify::enabled());
    CHECK(control::sd_notify::send("STATUS=waiting for peers"));
    CHECK(manager.receive() == "STATUS=waiting for peers");
    CHECK(control::sd_notify::send("READY=1\nSTATUS=tunnel up"));
    CHECK(manager.receive() == "READY=1\nSTATUS=tunnel up");
    CHECK(control::sd_notify::ready_sent());
  }
  CHECK_FALSE(control::sd_notify::send("STOPPING=1"));  // unset again
  ::rmdir(dir.c_str());
}

TEST_CASE("sd_notify: a datagram to an abstract socket, a vanished manager") {
  std::string name =
      "@sctptund-test-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
  {
    FakeManager manager(name);
    CHECK(control::sd_notify::send("STOPPING=1"));
    CHECK(manager.receive() == "STOPPING=1");
  }
  setenv("NOTIFY_SOCKET", name.c_str(), 1);  // nobody bound to it any more
  CHECK_FALSE(control::sd_notify::send("STOPPING=1"));
  unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("sd_notify: a reload is bracketed by RELOADING=1 and READY=1, once READY=1 was sent") {
  std::string dir = temp_dir();
  {
    FakeManager manager(dir + "/notify");
    REQUIRE(control::sd_notify::send("READY=1"));
    REQUIRE(manager.receive() == "READY=1");
    {
      control::sd_notify::ReloadScope reload;
      std::optional<std::string> begin = manager.receive();
      REQUIRE(begin);
      CHECK(begin->rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
      CHECK(begin->size() > std::strlen("RELOADING=1\nMONOTONIC_USEC="));
      CHECK(manager.idle());
    }
    CHECK(manager.receive() == "READY=1");
  }
  ::rmdir(dir.c_str());
}

TEST_CASE("sd_notify: READY=1 at the first ready association, STATUS= on every change") {
  control::sd_notify::Readiness r(10);
  CHECK(r.update(0, 0, 2, 0) == "STATUS=waiting for peers: 0 of 2 peer(s) up");
  CHECK(r.update(0, 0, 2, 0.1) == "");  // unchanged
  CHECK_FALSE(r.ready());
  CHECK(r.update(1, 1, 2, 0.2) ==
        "READY=1\nSTATUS=tunnel up: 1 association(s) ready, 1 of 2 peer(s) up");
  CHECK(r.ready());
  CHECK(r.update(1, 1, 2, 1) == "");
  CHECK(r.update(4, 2, 2, 2) == "STATUS=tunnel up: 4 association(s) ready, 2 of 2 peer(s) up");
  CHECK(r.update(0, 0, 2, 3) == "STATUS=waiting for peers: 0 of 2 peer(s) up");  // no second READY
  CHECK(r.update(0, 0, 2, 30) == "");
}

TEST_CASE("sd_notify: READY=1 after the bounded wait without any association") {
  control::sd_notify::Readiness r(10);
  CHECK(r.update(0, 0, 1, 0) == "STATUS=waiting for peers: 0 of 1 peer(s) up");
  CHECK(r.update(0, 0, 1, 9.9) == "");
  CHECK(r.update(0, 0, 1, 10) == "READY=1\nSTATUS=waiting for peers: 0 of 1 peer(s) up");
  CHECK(r.ready());
  CHECK(r.update(0, 0, 1, 11) == "");
  CHECK(r.update(2, 1, 1, 12) == "STATUS=tunnel up: 2 association(s) ready, 1 of 1 peer(s) up");
}
