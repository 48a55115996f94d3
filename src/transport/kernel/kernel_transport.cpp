#include "src/transport/kernel/kernel_transport.hpp"
#include "src/transport/kernel/kernel_state.hpp"

#include <netinet/in.h>
#include <netinet/sctp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "src/base/log.hpp"
#include "src/transport/message_buffer.hpp"
#include "src/transport/sctp_status.hpp"

namespace transport::kernel {

namespace {

using namespace detail;

constexpr double kBackoffMin = 0.1, kBackoffMax = 2.0;

// An address as the kernel hands it to us. An AF_INET6 socket (one is made when any address is
// IPv6) is dual-stack, and Linux reports its IPv4 peers as v4-mapped IPv6 addresses
// (::ffff:a.b.c.d) unless SCTP_I_WANT_MAPPED_V4_ADDR is off: such an address becomes the plain
// IPv4 address (and port) it stands for, so that it compares equal to the configured one and is
// shown as configured. Any other address is returned unchanged.
base::Endpoint unmapped(const base::Endpoint& ep) {
  if (ep.family() != AF_INET6) return ep;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(ep.sockaddr_ptr());
  if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return ep;
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = v6->sin6_port;
  std::memcpy(&v4.sin_addr, &v6->sin6_addr.s6_addr[12], sizeof v4.sin_addr);
  return base::Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
}

// An address from the kernel (sockaddr_in or sockaddr_in6, by its family), unmapped.
base::Endpoint from_kernel(const sockaddr* sa) {
  return unmapped(base::Endpoint::from_sockaddr(
      sa, sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)));
}

// Every entry of the kernel's address list for an association, as endpoints.
std::vector<base::Endpoint> peer_addresses(int fd, sctp_assoc_t kassoc) {
  std::vector<base::Endpoint> out;
  sockaddr* addrs = nullptr;
  int n = sctp_getpaddrs(fd, kassoc, &addrs);
  if (n <= 0) return out;
  auto* p = reinterpret_cast<std::uint8_t*>(addrs);
  for (int i = 0; i < n; ++i) {
    auto* sa = reinterpret_cast<sockaddr*>(p);
    out.push_back(from_kernel(sa));
    p += sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  }
  sctp_freepaddrs(addrs);
  return out;
}

const char* path_state_name(int state) {
  switch (state) {
    case SCTP_ADDR_AVAILABLE:
      return "available";
    case SCTP_ADDR_UNREACHABLE:
      return "unreachable";
    case SCTP_ADDR_REMOVED:
      return "removed";
    case SCTP_ADDR_ADDED:
      return "added";
    case SCTP_ADDR_MADE_PRIM:
      return "made primary";
    case SCTP_ADDR_CONFIRMED:
      return "confirmed";
    case SCTP_ADDR_POTENTIALLY_FAILED:
      return "potentially failed";
    default:
      return "changed";
  }
}

// One message on a one-to-many socket, with SCTP_SNDINFO (association, stream, flags); never
// blocks.
ssize_t send_with_info(int fd, const sctp_sndinfo& info, std::span<const std::uint8_t> bytes) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(sctp_sndinfo))] = {};
  iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = IPPROTO_SCTP;
  c->cmsg_type = SCTP_SNDINFO;
  c->cmsg_len = CMSG_LEN(sizeof(sctp_sndinfo));
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
  return sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void write_sysctl(const char* path, const std::string& value) {
  std::ofstream out(path);
  if (!out || !(out << value << '\n') || !out.flush())
    throw std::system_error(errno ? errno : EIO, std::generic_category(),
                            std::string("cannot write ") + path);
}

}  // namespace

KernelTransport::KernelTransport(base::EventLoop& loop, KernelOptions options,
                                 std::vector<PeerEndpoints> peers)
    : loop_(loop),
      options_(std::move(options)),
      peers_(std::move(peers)),
      pool_({.min = kBackoffMin, .max = kBackoffMax}, options_.sctp_port) {
  std::string why;
  if (!kernel_sctp_available(&why))
    throw std::runtime_error(
        "this kernel has no SCTP (socket: " + why +
        "): load the sctp module or use [transport] kind = \"udp\" or \"auto\"");
  if (options_.udp_encapsulation) {
    // Read by the kernel when an SCTP socket is created: set it before ours are.
    std::ifstream in("/proc/sys/net/sctp/udp_port");
    unsigned current = 0;
    if (!(in >> current))
      throw std::system_error(
          ENOTSUP, std::generic_category(),
          "this kernel has no SCTP UDP encapsulation (net.sctp.udp_port, Linux 5.11 "
          "and later)");
    if (current != options_.sctp_port) {
      write_sysctl("/proc/sys/net/sctp/udp_port", std::to_string(options_.sctp_port));
      LOG_INFO("kernel SCTP: net.sctp.udp_port set to %u (was %u) in this network namespace",
               unsigned{options_.sctp_port}, current);
    }
  }
  for (const PeerEndpoints& peer : peers_)
    slot_count_ = std::max<std::size_t>(slot_count_, peer.pool);
  for (std::size_t slot = 0; slot < slot_count_; ++slot) open_slot_socket(slot);
  for (const PeerEndpoints& peer : peers_) {
    PeerId id = pool_.add_peer(peer.name);
    for (std::size_t slot = 0; slot < peer.pool; ++slot) {
      auto link = std::make_unique<Link>();
      pool_.add(*link, id);
      link->reconnect_timer =
          std::make_unique<base::Timer>(loop_, 0, 0, [this, l = link.get()] { connect(*l); });
      links_.push_back(std::move(link));
    }
  }
}

KernelTransport::~KernelTransport() = default;  // closing the sockets aborts the associations

void KernelTransport::start() {
  for (auto& socket : sockets_) socket->reader->start();
  for (auto& link : links_) connect(*link);
}

void KernelTransport::connect(Link& link) {
  if (link.machine.state() != SlotState::closed) return;            // the peer's INIT was faster
  if (double wait = pool_.held_for(link, Time::now()); wait > 0) {  // after an abort
    link.reconnect_timer->start(wait);
    return;
  }
  const PeerEndpoints& peer = peers_[link.peer];
  SlotSocket& socket = *sockets_[link.slot];
  auto port = static_cast<std::uint16_t>(options_.sctp_port + link.slot);
  std::vector<std::uint8_t> packed = pack(peer.remotes, port);
  sctp_assoc_t id = 0;
  int r = sctp_connectx(socket.fd, reinterpret_cast<sockaddr*>(packed.data()),
                        static_cast<int>(peer.remotes.size()), &id);
  if (r != 0 && errno != EINPROGRESS) {
    if (errno == EALREADY || errno == EISCONN) return;  // an association exists: its events follow
    LOG_DEBUG("peer %s: slot %u: connect failed: %s", peer.name.c_str(), link.slot,
              std::strerror(errno));
    link.reconnect_timer->start(pool_.schedule_reconnect(link, Time::now()));
    return;
  }
  pool_.transition(link, SlotEvent::connect);
  link.kassoc = id;
  if (id) socket.by_kassoc[id] = &link;
  LOG_DEBUG("peer %s: slot %u connecting to %s (SCTP port %u, %zu address(es))", peer.name.c_str(),
            link.slot, peer.remotes[0].address_string().c_str(), unsigned{port},
            peer.remotes.size());
}

void KernelTransport::on_readable(SlotSocket& socket) {
  for (int i = 0; i < 256; ++i) {
    std::span<std::uint8_t> room = socket.rx.room();
    iovec iov{room.data(), room.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(sctp_rcvinfo))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(socket.fd, &msg, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (!receive_error_log_.allow(loop_.now())) {
        ++receive_errors_unlogged_;
        return;
      }
      LOG_WARN(
          "kernel SCTP: receive on SCTP port %zu failed: %s (%llu such failures not logged "
          "since the last line)",
          options_.sctp_port + socket.slot, std::strerror(errno),
          static_cast<unsigned long long>(receive_errors_unlogged_));
      receive_errors_unlogged_ = 0;
      return;
    }
    MessageBuffer::Part part = socket.rx.add(static_cast<std::size_t>(n), msg.msg_flags & MSG_EOR);
    if (part == MessageBuffer::Part::more) continue;
    tun::PacketBuf& message = socket.rx.msg();
    if (msg.msg_flags & MSG_NOTIFICATION) {
      on_notification(socket, message.data());
    } else if (part == MessageBuffer::Part::dropped) {
      ++stats_.datagrams_malformed;
    } else {
      sctp_rcvinfo info{};
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_SCTP && c->cmsg_type == SCTP_RCVINFO)
          std::memcpy(&info, CMSG_DATA(c), sizeof info);
      }
      auto it = socket.by_kassoc.find(info.rcv_assoc_id);
      Link* link = it == socket.by_kassoc.end() ? nullptr : it->second;
      ++stats_.datagrams_in;
      stats_.datagram_bytes_in += message.size();
      if (link && link->assoc && events_) {
        link->count_received(message.size());
        events_->on_message(link->assoc, info.rcv_sid, message);
      } else {
        ++stats_.datagrams_unknown_slot;  // an association that is not (or no longer) ours
      }
    }
    socket.rx.clear();
  }
}

void KernelTransport::on_notification(SlotSocket& socket, std::span<const std::uint8_t> bytes) {
  sctp_notification note{};
  if (bytes.size() < sizeof note.sn_header) return;
  std::memcpy(&note, bytes.data(), std::min(bytes.size(), sizeof note));
  switch (note.sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE: {
      const sctp_assoc_change& c = note.sn_assoc_change;
      AssocChange change = assoc_change(
          {SCTP_COMM_UP, SCTP_RESTART, SCTP_COMM_LOST, SCTP_SHUTDOWN_COMP, SCTP_CANT_STR_ASSOC},
          c.sac_state);
      on_assoc_change(socket, c.sac_assoc_id, change, c.sac_inbound_streams,
                      c.sac_outbound_streams);
      break;
    }
    case SCTP_PEER_ADDR_CHANGE: {
      const sctp_paddr_change& c = note.sn_paddr_change;
      on_peer_addr_change(socket, c.spc_assoc_id, &c.spc_aaddr, c.spc_state);
      break;
    }
    case SCTP_SEND_FAILED_EVENT:
      ++stats_.send_errors;
      break;
    case SCTP_SHUTDOWN_EVENT: {
      auto it = socket.by_kassoc.find(note.sn_shutdown_event.sse_assoc_id);
      if (it != socket.by_kassoc.end()) pool_.shutdown(*it->second);
      break;
    }
    default:
      break;
  }
}

KernelTransport::Link* KernelTransport::link_for_new_assoc(SlotSocket& socket, sctp_assoc_t kassoc,
                                                           std::string* remote) {
  std::vector<base::Endpoint> addrs = peer_addresses(socket.fd, kassoc);
  if (!addrs.empty()) *remote = addrs[0].to_string();
  for (const base::Endpoint& addr : addrs) {
    for (PeerId id = 0; id < peers_.size(); ++id) {
      for (const base::Endpoint& known : peers_[id].remotes) {
        if (unmapped(known).same_address(addr)) {
          return static_cast<Link*>(pool_.at(id, socket.slot));  // none: a slot we do not keep
        }
      }
    }
  }
  return nullptr;
}

void KernelTransport::on_assoc_change(SlotSocket& socket, sctp_assoc_t kassoc, AssocChange change,
                                      std::uint16_t in_streams, std::uint16_t out_streams) {
  auto it = socket.by_kassoc.find(kassoc);
  Link* link = it == socket.by_kassoc.end() ? nullptr : it->second;
  if (!is_up(change)) {
    const char* why = down_reason(change);
    if (link && why) link_down(*link, why);
    return;
  }
  bool theirs = !link;  // a new association from the peer's INIT (not one of our connects)
  if (!link) {
    std::string remote = "?";
    link = link_for_new_assoc(socket, kassoc, &remote);
    if (!link) {
      note_unknown_source(remote);
      abort_kernel_assoc(socket, kassoc, "not a peer of ours");
      return;
    }
    if (link->kassoc && link->kassoc != kassoc) {  // a second association for the slot
      abort_kernel_assoc(socket, kassoc, "slot taken");
      return;
    }
    link->kassoc = kassoc;
    socket.by_kassoc[kassoc] = link;
  }
  link->reconnect_timer->stop();
  if (link->machine.state() == SlotState::closed)
    pool_.transition(*link, SlotEvent::connect);  // the peer's INIT
  const char* how = change == AssocChange::restart ? "restarted by peer"
                    : theirs                       ? "up (started by the peer)"
                                                   : "up";
  pool_.up(*link, in_streams, out_streams, how, ", primary path to " + primary_of(*link),
           Time::now());
}

void KernelTransport::on_peer_addr_change(SlotSocket& socket, sctp_assoc_t kassoc, const void* addr,
                                          int state) {
  auto it = socket.by_kassoc.find(kassoc);
  if (it == socket.by_kassoc.end()) return;
  Link& link = *it->second;
  base::Endpoint ep = from_kernel(static_cast<const sockaddr*>(addr));
  if (state == SCTP_ADDR_UNREACHABLE || state == SCTP_ADDR_POTENTIALLY_FAILED ||
      state == SCTP_ADDR_MADE_PRIM)
    ++link.path_changes;
  // Path events are per association; the slots of a peer see the same ones: log slot 0's.
  if (link.slot == 0 || state == SCTP_ADDR_MADE_PRIM)
    LOG_INFO("peer %s: path to %s %s (association %llu, primary now %s)",
             peers_[link.peer].name.c_str(), ep.address_string().c_str(), path_state_name(state),
             static_cast<unsigned long long>(link.assoc), primary_of(link).c_str());
}

void KernelTransport::link_down(Link& link, const char* why) {
  if (link.kassoc) sockets_[link.slot]->by_kassoc.erase(link.kassoc);
  link.kassoc = 0;
  link.reconnect_timer->start(pool_.lost(link, why, Time::now()));
}

void KernelTransport::abort_kernel_assoc(SlotSocket& socket, sctp_assoc_t kassoc,
                                         const char* reason) {
  sctp_sndinfo info{};
  info.snd_flags = SCTP_ABORT;
  info.snd_assoc_id = kassoc;
  if (send_with_info(socket.fd, info,
                     {reinterpret_cast<const std::uint8_t*>(reason), std::strlen(reason)}) < 0 &&
      errno != EINVAL && errno != ENOENT)
    LOG_DEBUG("kernel SCTP: abort of association %d failed: %s", kassoc, std::strerror(errno));
  socket.by_kassoc.erase(kassoc);
}

void KernelTransport::abort(AssocId assoc, const char* reason) {
  Link* link = find_link(assoc);
  if (!link) return;
  abort_kernel_assoc(*sockets_[link->slot], link->kassoc, reason);
  link->kassoc = 0;
  Time now = Time::now();
  pool_.abort(*link, reason, now);
  pool_.transition(*link, SlotEvent::lost);  // the kernel's abort is immediate
  link->reconnect_timer->start(pool_.schedule_reconnect(*link, now));  // the hold-off
}

SendResult KernelTransport::send(AssocId assoc, std::uint16_t stream,
                                 std::span<const std::uint8_t> msg, SendOptions /*options*/) {
  Link* link = find_link(assoc);
  if (!link || !link->kassoc) return SendResult::closed;
  if (stream >= link->out_streams) return SendResult::error;
  SlotSocket& socket = *sockets_[link->slot];
  sctp_sndinfo info{};
  info.snd_sid = stream;
  info.snd_assoc_id = link->kassoc;
  ssize_t n = send_with_info(socket.fd, info, msg);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      socket.writer->start();
      return SendResult::would_block;
    }
    ++stats_.send_errors;
    return errno == EPIPE || errno == EINVAL || errno == ENOENT ? SendResult::closed
                                                                : SendResult::error;
  }
  link->count_sent(msg.size());
  ++stats_.datagrams_out;
  stats_.datagram_bytes_out += msg.size();
  stats_.largest_datagram_out = std::max<std::uint64_t>(stats_.largest_datagram_out, msg.size());
  return SendResult::ok;
}

KernelTransport::Link* KernelTransport::find_link(AssocId assoc) const {
  return static_cast<Link*>(pool_.find(assoc));
}

void KernelTransport::note_unknown_source(const std::string& from) {
  ++stats_.datagrams_unknown_source;
  if (!unknown_log_.allow(loop_.now())) return;
  LOG_WARN("association from %s, which is no peer's address: aborted (%llu such so far)",
           from.c_str(), static_cast<unsigned long long>(stats_.datagrams_unknown_source));
}

std::string KernelTransport::primary_of(const Link& link) const {
  if (!link.kassoc) return "-";
  sctp_prim prim{};
  prim.ssp_assoc_id = link.kassoc;
  socklen_t len = sizeof prim;
  if (getsockopt(sockets_[link.slot]->fd, IPPROTO_SCTP, SCTP_PRIMARY_ADDR, &prim, &len) != 0)
    return "?";
  return from_kernel(reinterpret_cast<const sockaddr*>(&prim.ssp_addr)).to_string();
}

std::vector<AssocInfo> KernelTransport::associations() const {
  std::vector<AssocInfo> out;
  for (const auto& link : links_) {
    const PeerEndpoints& peer = peers_[link->peer];
    AssocInfo info = pool_.info(*link);
    SlotState st = link->machine.state();
    info.path_changes = link->path_changes;
    std::string primary = primary_of(*link);
    info.path = "kernel -> " + primary;
    int fd = sockets_[link->slot]->fd;
    if (link->kassoc && st == SlotState::ready) {
      sctp_status status{};
      status.sstat_assoc_id = link->kassoc;
      socklen_t len = sizeof status;
      if (getsockopt(fd, IPPROTO_SCTP, SCTP_STATUS, &status, &len) == 0) {
        apply_status(info, status);
        info.window.send_buffer = static_cast<std::uint32_t>(options_.socket_buffer);
      }
      sctp_assoc_stats astats{};
      astats.sas_assoc_id = link->kassoc;
      len = sizeof astats;
      if (getsockopt(fd, IPPROTO_SCTP, SCTP_GET_ASSOC_STATS, &astats, &len) == 0) {
        info.window.chunks_sent = astats.sas_ouodchunks + astats.sas_oodchunks;
        info.window.chunks_retransmitted = astats.sas_rtxchunks;
      }
    }
    for (base::Endpoint remote : peer.remotes) {
      remote = unmapped(remote);
      remote.set_port(static_cast<std::uint16_t>(options_.sctp_port + link->slot));
      PathInfo p;
      p.local = "kernel";
      p.remote = remote.to_string();
      p.primary = p.remote == primary;
      p.state = "unknown";
      if (link->kassoc && st == SlotState::ready) {
        sctp_paddrinfo pinfo{};
        pinfo.spinfo_assoc_id = link->kassoc;
        std::memcpy(&pinfo.spinfo_address, remote.sockaddr_ptr(), remote.sockaddr_len());
        socklen_t len = sizeof pinfo;
        if (getsockopt(fd, IPPROTO_SCTP, SCTP_GET_PEER_ADDR_INFO, &pinfo, &len) == 0) {
          p.state = pinfo.spinfo_state == SCTP_ACTIVE        ? "up"
                    : pinfo.spinfo_state == SCTP_PF          ? "potentially-failed"
                    : pinfo.spinfo_state == SCTP_INACTIVE    ? "down"
                    : pinfo.spinfo_state == SCTP_UNCONFIRMED ? "unconfirmed"
                                                             : "unknown";
          p.srtt_us = pinfo.spinfo_srtt * 1000;
        }
      }
      p.role = path_role(p.state, p.primary);
      info.paths.push_back(std::move(p));
    }
    out.push_back(std::move(info));
  }
  return out;
}

TransportStats KernelTransport::stats() const {
  return stats_;
}

}  // namespace transport::kernel
