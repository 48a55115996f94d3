#include "src/control/key_file.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace control {

std::optional<crypto::Key> read_key_file(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    error = errno == ELOOP ? "key file '" + path + "' is a symbolic link: name the file itself"
                           : "cannot read key file '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot read it: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "is not a regular file";
  } else if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    problem = "is owned by uid " + std::to_string(st.st_uid) +
              ", neither root nor the daemon's user: chown it";
  } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    problem = std::string("is open to group or others (mode ") + mode + "): chmod 600 it";
  } else if (st.st_size > 4096) {
    problem = "is " + std::to_string(st.st_size) + " bytes: a key file holds 44 characters";
  }
  if (!problem.empty()) {
    ::close(fd);
    error = "key file '" + path + "' " + problem;
    return std::nullopt;
  }
  std::array<char, 4097> buf{};
  std::size_t len = 0;
  while (len < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + len, buf.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) problem = std::string("cannot read it: ") + std::strerror(errno);
      break;
    }
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::optional<crypto::Key> key;
  if (problem.empty() && len > 4096) problem = "grew past 4096 bytes while it was read";
  if (problem.empty()) {
    std::string why;
    key = crypto::parse_key(std::string_view(buf.data(), len), why);
    if (!key) problem = why;
  }
  sodium_memzero(buf.data(), buf.size());
  if (!problem.empty()) error = "key file '" + path + "': " + problem;
  return key;
}

}  // namespace control
