#include "src/udp_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace net {
namespace {
constexpr int kSocketBuffer = 4 << 20;

void set_buffer(int fd, int force_option, int option) {
  int size = kSocketBuffer;
  if (setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
}
}  // namespace

UdpSocket::UdpSocket(const Endpoint& local, std::uint32_t fwmark)
    : local_(local),
      send_buf_(kBatch * kMaxDatagram),
      send_to_(kBatch),
      send_len_(kBatch),
      recv_buf_(kBatch * kMaxDatagram) {
  fd_ = socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "udp socket for " + local.to_string());
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (local.family() == AF_INET6) setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (fwmark != 0 && setsockopt(fd_, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark) != 0) {
    int err = errno;
    close(fd_);
    throw std::system_error(err, std::generic_category(), "SO_MARK on udp " + local.to_string());
  }
  set_buffer(fd_, SO_SNDBUFFORCE, SO_SNDBUF);
  set_buffer(fd_, SO_RCVBUFFORCE, SO_RCVBUF);
  if (bind(fd_, local.sockaddr_ptr(), local.sockaddr_len()) != 0) {
    int err = errno;
    close(fd_);
    throw std::system_error(err, std::generic_category(), "bind udp " + local.to_string());
  }
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

std::size_t UdpSocket::receive(const Handler& handler, std::size_t limit) {
  std::size_t total = 0;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  while (total < limit) {
    std::size_t want = std::min(kBatch, limit - total);
    for (std::size_t i = 0; i < want; ++i) {
      iov[i] = {recv_buf_.data() + i * kMaxDatagram, kMaxDatagram};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd_, msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      ++stats_.received;
      stats_.received_bytes += msgs[i].msg_len;
      Endpoint sender = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from[i]),
                                                msgs[i].msg_hdr.msg_namelen);
      handler(sender, {recv_buf_.data() + i * kMaxDatagram, msgs[i].msg_len});
    }
    total += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < want) break;
  }
  return total;
}

void UdpSocket::queue(const Endpoint& to, std::span<const std::uint8_t> datagram) {
  if (datagram.size() > kMaxDatagram) {
    ++stats_.send_errors;
    return;
  }
  if (queued_ == kBatch) flush();
  std::memcpy(send_buf_.data() + queued_ * kMaxDatagram, datagram.data(), datagram.size());
  send_to_[queued_] = to;
  send_len_[queued_] = datagram.size();
  ++queued_;
}

void UdpSocket::flush() {
  std::size_t done = 0;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  for (std::size_t i = 0; i < queued_; ++i) {
    iov[i] = {send_buf_.data() + i * kMaxDatagram, send_len_[i]};
    msgs[i] = {};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(send_to_[i].sockaddr_ptr());
    msgs[i].msg_hdr.msg_namelen = send_to_[i].sockaddr_len();
  }
  while (done < queued_) {
    int n = sendmmsg(fd_, msgs + done, static_cast<unsigned>(queued_ - done), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The datagram at `done` cannot go (full buffer, unreachable): drop it, go on with the rest.
      ++stats_.send_errors;
      ++done;
      continue;
    }
    for (int i = 0; i < n; ++i) {
      ++stats_.sent;
      stats_.sent_bytes += send_len_[done + static_cast<std::size_t>(i)];
    }
    done += static_cast<std::size_t>(n);
  }
  queued_ = 0;
}

}  // namespace net
