#include "tun/linux_tun.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace tun {
namespace {

// Owns a descriptor until release(); closes it on every early exit from open().
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

[[noreturn]] void throw_errno(int err, const std::string& device, const std::string& what) {
  throw std::system_error(err, std::generic_category(),
                          "tun device " + (device.empty() ? "(unnamed)" : device) + ": " + what);
}

// SIOCSIFMTU goes through any socket; an AF_INET datagram socket is the customary one.
void set_interface_mtu(const std::string& name, int mtu) {
  FdGuard sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw_errno(errno, name, "socket for SIOCSIFMTU");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size() + 1);
  ifr.ifr_mtu = mtu;
  if (::ioctl(sock.get(), SIOCSIFMTU, &ifr) < 0) {
    throw_errno(errno, name, "set MTU " + std::to_string(mtu));
  }
}

}  // namespace

std::unique_ptr<LinuxTun> LinuxTun::open(const std::string& name, int mtu,
                                         const LinuxTunOptions& options) {
  if (name.size() >= IFNAMSIZ) {
    throw std::invalid_argument("tun device " + name + ": name longer than " +
                                std::to_string(IFNAMSIZ - 1) + " characters");
  }

  FdGuard fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) throw_errno(errno, name, "open /dev/net/tun");

  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size() + 1);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (options.vnet_hdr ? IFF_VNET_HDR : 0);
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) throw_errno(errno, name, "TUNSETIFF");
  std::string actual_name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));

  bool offloads = false;
  if (options.vnet_hdr) {
    int hdr_size = 10;  // the legacy virtio_net_hdr, without num_buffers
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_size) < 0)
      throw_errno(errno, name, "TUNSETVNETHDRSZ");
    unsigned flags = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    offloads = ::ioctl(fd.get(), TUNSETOFFLOAD, flags) == 0;
  }

  set_interface_mtu(actual_name, mtu);
  auto tun = std::unique_ptr<LinuxTun>(new LinuxTun(fd.release(), std::move(actual_name), mtu));
  tun->vnet_hdr_ = options.vnet_hdr;
  tun->offloads_ = offloads;
  return tun;
}

LinuxTun::~LinuxTun() {
  ::close(fd_);
}

std::size_t LinuxTun::read(std::span<PacketBuf> bufs) {
  std::size_t n = 0;
  while (n < bufs.size()) {
    PacketBuf& buf = bufs[n];
    buf.reset();
    const std::span<std::uint8_t> room = buf.tailroom();
    const ssize_t got = ::read(fd_, room.data(), room.size());
    if (got > 0) {
      buf.set_size(static_cast<std::size_t>(got));
      stats_.read_packets++;
      stats_.read_bytes += static_cast<std::uint64_t>(got);
      n++;
    } else if (got == 0) {
      errors_.empty_reads++;  // should not happen on a TUN; never spin on it
      break;
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN) {
        errors_.read_errors++;
        errors_.last_read_errno = errno;
      }
      break;
    }
  }
  return n;
}

std::size_t LinuxTun::write(std::span<const PacketBuf* const> packets) {
  std::size_t accepted = 0;
  for (const PacketBuf* packet : packets) {
    const std::span<const std::uint8_t> bytes = packet->data();
    if (bytes.empty()) {
      errors_.empty_writes++;
      stats_.write_errors++;
      continue;
    }
    ssize_t put;
    do {
      put = ::write(fd_, bytes.data(), bytes.size());
    } while (put < 0 && errno == EINTR);
    if (put == static_cast<ssize_t>(bytes.size())) {
      stats_.written_packets++;
      stats_.written_bytes += bytes.size();
      accepted++;
      continue;
    }
    stats_.write_errors++;
    errors_.last_write_errno = put < 0 ? errno : EIO;  // a short write counts as EIO
    if (errors_.last_write_errno == EAGAIN) errors_.write_would_block++;
  }
  return accepted;
}

}  // namespace tun
