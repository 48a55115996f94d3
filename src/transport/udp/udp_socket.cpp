#include "src/transport/udp/udp_socket.hpp"

#include <fcntl.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace transport::udp {
namespace {
constexpr std::size_t kMaxGsoSegments = 64;  // the kernel's UDP_MAX_SEGMENTS
constexpr std::size_t kMaxGsoBytes = 65000;  // stay below the 64 KiB UDP length limit

// Path MTU discovery mode: IP_PMTUDISC_DO / IPV6_PMTUDISC_DO (DF, never fragmented locally) or
// *_WANT (fragmented to the known path MTU).
int set_pmtudisc(int fd, int family, bool fragment) {
  int v4 = fragment ? IP_PMTUDISC_WANT : IP_PMTUDISC_DO;
  int v6 = fragment ? IPV6_PMTUDISC_WANT : IPV6_PMTUDISC_DO;
  return family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof v6)
                            : setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof v4);
}

void set_buffer(int fd, int force_option, int option, int size) {
  if (setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
}
}  // namespace

UdpSocket::UdpSocket(const base::Endpoint& local, std::uint32_t fwmark, int buffer)
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
  set_buffer(fd_, SO_SNDBUFFORCE, SO_SNDBUF, buffer);
  set_buffer(fd_, SO_RCVBUFFORCE, SO_RCVBUF, buffer);
  if (bind(fd_, local.sockaddr_ptr(), local.sockaddr_len()) != 0) {
    int err = errno;
    close(fd_);
    throw std::system_error(err, std::generic_category(), "bind udp " + local.to_string());
  }
  set_pmtudisc(fd_, local.family(), false);
  // Probe the batching offloads: GSO by asking for a segment size of 0 (= off), GRO by enabling it.
  int zero = 0;
  gso_ = setsockopt(fd_, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  gro_ = setsockopt(fd_, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

std::size_t UdpSocket::receive(const Handler& handler, std::size_t limit) {
  std::size_t total = 0;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  alignas(cmsghdr) char control[kBatch][CMSG_SPACE(sizeof(int))];
  while (total < limit) {
    std::size_t want = std::min(kBatch, limit - total);
    for (std::size_t i = 0; i < want; ++i) {
      iov[i] = {recv_buf_.data() + i * kMaxDatagram, kMaxDatagram};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      if (gro_) {
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = sizeof control[i];
      }
    }
    int n = recvmmsg(fd_, msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      const msghdr& hdr = msgs[i].msg_hdr;
      std::size_t len = msgs[i].msg_len;
      std::size_t segment = len;  // GRO: several datagrams of segment bytes (the last shorter)
      for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&hdr), c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int size;
          std::memcpy(&size, CMSG_DATA(c), sizeof size);
          if (size > 0) segment = static_cast<std::size_t>(size);
        }
      }
      base::Endpoint sender =
          base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from[i]), hdr.msg_namelen);
      const std::uint8_t* base = recv_buf_.data() + static_cast<std::size_t>(i) * kMaxDatagram;
      for (std::size_t off = 0; off < len; off += segment) {
        std::size_t part = std::min(segment, len - off);
        ++stats_.received;
        stats_.received_bytes += part;
        handler(sender, {base + off, part});
      }
    }
    total += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < want) break;
  }
  return total;
}

std::span<std::uint8_t> UdpSocket::queue(const base::Endpoint& to,
                                         std::span<const std::uint8_t> datagram) {
  return queue(to, {}, datagram);
}

std::span<std::uint8_t> UdpSocket::queue(const base::Endpoint& to,
                                         std::span<const std::uint8_t> head,
                                         std::span<const std::uint8_t> body) {
  std::size_t size = head.size() + body.size();
  if (size > kMaxDatagram) {
    ++stats_.send_errors;
    return {};
  }
  if (queued_ == kBatch) flush();
  std::uint8_t* slot = send_buf_.data() + queued_ * kMaxDatagram;
  if (!head.empty()) std::memcpy(slot, head.data(), head.size());
  if (!body.empty()) std::memcpy(slot + head.size(), body.data(), body.size());
  send_to_[queued_] = to;
  send_len_[queued_] = size;
  ++queued_;
  return {slot, size};
}

void UdpSocket::flush() {
  // Group the queue into messages: with GSO, a run of datagrams to one destination whose sizes
  // are equal (the last may be shorter) becomes one send with UDP_SEGMENT.
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  alignas(cmsghdr) char control[kBatch][CMSG_SPACE(sizeof(std::uint16_t))];
  std::size_t first_of[kBatch + 1];  // datagram index each message starts at
  std::size_t count = 0;
  for (std::size_t i = 0; i < queued_;) {
    std::size_t j = i + 1, bytes = send_len_[i];
    if (gso_) {
      while (j < queued_ && send_to_[j] == send_to_[i] && send_len_[j] <= send_len_[i] &&
             send_len_[j - 1] == send_len_[i] && j - i < kMaxGsoSegments &&
             bytes + send_len_[j] <= kMaxGsoBytes) {
        bytes += send_len_[j];
        ++j;
      }
    }
    msgs[count] = {};
    msghdr& hdr = msgs[count].msg_hdr;
    for (std::size_t k = i; k < j; ++k)
      iov[k] = {send_buf_.data() + k * kMaxDatagram, send_len_[k]};
    hdr.msg_iov = &iov[i];
    hdr.msg_iovlen = j - i;
    hdr.msg_name = const_cast<sockaddr*>(send_to_[i].sockaddr_ptr());
    hdr.msg_namelen = send_to_[i].sockaddr_len();
    if (j - i > 1) {
      hdr.msg_control = control[count];
      hdr.msg_controllen = sizeof control[count];
      cmsghdr* c = CMSG_FIRSTHDR(&hdr);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      auto segment = static_cast<std::uint16_t>(send_len_[i]);
      std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
    }
    first_of[count++] = i;
    i = j;
  }
  first_of[count] = queued_;

  std::size_t done = 0;
  while (done < count) {
    int n = sendmmsg(fd_, msgs + done, static_cast<unsigned>(count - done), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EIO && msgs[done].msg_hdr.msg_controllen) {
        // The path cannot segment (no checksum offload on the egress device): stop using GSO and
        // send this message's datagrams one by one.
        gso_ = false;
        for (std::size_t k = first_of[done]; k < first_of[done + 1]; ++k) {
          if (sendto(fd_, send_buf_.data() + k * kMaxDatagram, send_len_[k], MSG_DONTWAIT,
                     send_to_[k].sockaddr_ptr(), send_to_[k].sockaddr_len()) >= 0) {
            ++stats_.sent;
            stats_.sent_bytes += send_len_[k];
          } else {
            ++stats_.send_errors;
            if (errno == EMSGSIZE) ++stats_.too_big;
          }
        }
      } else {
        // This message cannot go (full buffer, unreachable, too big): drop it (SCTP retransmits).
        if (errno == EMSGSIZE || (errno == EINVAL && msgs[done].msg_hdr.msg_controllen))
          stats_.too_big += first_of[done + 1] - first_of[done];
        stats_.send_errors += first_of[done + 1] - first_of[done];
      }
      ++done;
      continue;
    }
    for (int m = 0; m < n; ++m) {
      for (std::size_t k = first_of[done + m]; k < first_of[done + m + 1]; ++k) {
        ++stats_.sent;
        stats_.sent_bytes += send_len_[k];
      }
      if (first_of[done + m + 1] - first_of[done + m] > 1) ++stats_.gso_sends;
    }
    done += static_cast<std::size_t>(n);
  }
  queued_ = 0;
}

int UdpSocket::send_now(const base::Endpoint& to, std::span<const std::uint8_t> datagram) {
  for (;;) {
    if (sendto(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT, to.sockaddr_ptr(),
               to.sockaddr_len()) >= 0) {
      ++stats_.sent;
      stats_.sent_bytes += datagram.size();
      return 0;
    }
    if (errno == EINTR) continue;
    ++stats_.send_errors;
    if (errno == EMSGSIZE) ++stats_.too_big;
    return errno;
  }
}

int UdpSocket::send_fragmentable(const base::Endpoint& to, std::span<const std::uint8_t> datagram) {
  set_pmtudisc(fd_, local_.family(), true);
  int err = send_now(to, datagram);
  set_pmtudisc(fd_, local_.family(), false);
  return err;
}

RouteView route_to(const base::Endpoint& remote, std::uint32_t fwmark,
                   const base::Endpoint* local) {
  RouteView view;
  int family = remote.family();
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return view;
  if (fwmark) setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark);
  if (local && !local->is_wildcard() && local->family() == family) {
    base::Endpoint from = *local;
    from.set_port(0);
    (void)bind(fd, from.sockaddr_ptr(), from.sockaddr_len());  // if it fails: the default source
  }
  if (connect(fd, remote.sockaddr_ptr(), remote.sockaddr_len()) == 0) {
    sockaddr_storage source{};
    socklen_t len = sizeof source;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&source), &len) == 0)
      view.source = base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&source), len);
    int mtu = 0;
    len = sizeof mtu;
    bool v6 = family == AF_INET6;
    if (getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &len) == 0)
      view.mtu = mtu;
  }
  close(fd);
  return view;
}

}  // namespace transport::udp
