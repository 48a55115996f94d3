// KernelTransport, part 2: the one-to-many socket of a pool slot, made for the families the
// addresses need, with our options (buffers, events, INIT, RTO, path supervision, UDP
// encapsulation), bound to the local addresses on the slot's SCTP port and listening.

#include "src/transport/kernel/kernel_state.hpp"
#include "src/transport/kernel/kernel_transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/sctp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "src/base/log.hpp"

namespace transport::kernel {

namespace {

using namespace detail;

template <class T>
void set_option(int fd, int level, int name, const T& value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0)
    LOG_WARN("kernel SCTP: setting %s failed: %s", what, std::strerror(errno));
}

base::Endpoint wildcard(int family) {
  return *base::Endpoint::parse(family == AF_INET6 ? "::" : "0.0.0.0", 0);
}

}  // namespace

namespace detail {

// Addresses packed back to back, as sctp_bindx and sctp_connectx take them.
std::vector<std::uint8_t> pack(const std::vector<base::Endpoint>& endpoints, std::uint16_t port) {
  std::vector<std::uint8_t> out;
  for (base::Endpoint ep : endpoints) {
    ep.set_port(port);
    auto* p = reinterpret_cast<const std::uint8_t*>(ep.sockaddr_ptr());
    out.insert(out.end(), p, p + ep.sockaddr_len());
  }
  return out;
}

}  // namespace detail

bool kernel_sctp_available(std::string* why) {
  int fd = socket(AF_INET, SOCK_SEQPACKET | SOCK_CLOEXEC, IPPROTO_SCTP);
  if (fd < 0) {
    if (why) *why = std::strerror(errno);
    return false;
  }
  close(fd);
  return true;
}

void KernelTransport::open_slot_socket(std::size_t slot) {
  auto s = std::make_unique<SlotSocket>();
  s->slot = slot;
  // One socket for both families once any address is IPv6: an AF_INET6 socket without
  // IPV6_V6ONLY also binds, connects to and accepts IPv4 addresses, so one association may have
  // paths of both families. When only the wildcard local "::" asks for IPv6, a host without IPv6
  // gets an IPv4 socket.
  bool v6_needed = false, v6_wanted = false;
  for (const base::Endpoint& ep : options_.locals) {
    v6_wanted = v6_wanted || ep.family() == AF_INET6;
    v6_needed = v6_needed || (ep.family() == AF_INET6 && !ep.is_wildcard());
  }
  for (const PeerEndpoints& peer : peers_) {
    for (const base::Endpoint& ep : peer.remotes) v6_needed = v6_needed || ep.family() == AF_INET6;
  }
  int family = v6_needed || v6_wanted ? AF_INET6 : AF_INET;
  s->fd = socket(family, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_SCTP);
  if (s->fd < 0 && errno == EAFNOSUPPORT && !v6_needed) {
    if (slot == 0) LOG_WARN("kernel SCTP: no IPv6 on this host: IPv4 only (local \"::\" ignored)");
    family = AF_INET;
    s->fd = socket(family, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_SCTP);
  }
  if (s->fd < 0) throw std::system_error(errno, std::generic_category(), "kernel SCTP socket");
  int fd = s->fd;
  if (family == AF_INET6) {
    // IPv4 peers as AF_INET addresses in every address the kernel hands us (from_kernel unmaps
    // them anyway, should a kernel ignore this).
    int off = 0;
    set_option(fd, IPPROTO_SCTP, SCTP_I_WANT_MAPPED_V4_ADDR, off, "SCTP_I_WANT_MAPPED_V4_ADDR");
  }
  if (options_.fwmark) set_option(fd, SOL_SOCKET, SO_MARK, options_.fwmark, "SO_MARK");
  // As root, beyond net.core.[rw]mem_max; else the plain options (capped by the sysctls).
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &options_.socket_buffer, sizeof(int)) != 0)
    set_option(fd, SOL_SOCKET, SO_SNDBUF, options_.socket_buffer, "SO_SNDBUF");
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &options_.socket_buffer, sizeof(int)) != 0)
    set_option(fd, SOL_SOCKET, SO_RCVBUF, options_.socket_buffer, "SO_RCVBUF");
  int on = 1;
  set_option(fd, IPPROTO_SCTP, SCTP_NODELAY, on, "SCTP_NODELAY");
  set_option(fd, IPPROTO_SCTP, SCTP_RECVRCVINFO, on, "SCTP_RECVRCVINFO");
  for (std::uint16_t type :
       {SCTP_ASSOC_CHANGE, SCTP_PEER_ADDR_CHANGE, SCTP_SHUTDOWN_EVENT, SCTP_SEND_FAILED_EVENT}) {
    sctp_event event{};
    event.se_assoc_id = SCTP_FUTURE_ASSOC;
    event.se_type = type;
    event.se_on = 1;
    set_option(fd, IPPROTO_SCTP, SCTP_EVENT, event, "SCTP_EVENT");
  }
  sctp_initmsg init{};
  init.sinit_num_ostreams = options_.streams;
  init.sinit_max_instreams = options_.streams;
  init.sinit_max_attempts = static_cast<std::uint16_t>(options_.max_init_attempts);
  init.sinit_max_init_timeo =
      static_cast<std::uint16_t>(std::min<std::uint32_t>(options_.rto_max_ms, 65535));
  set_option(fd, IPPROTO_SCTP, SCTP_INITMSG, init, "SCTP_INITMSG");
  sctp_rtoinfo rto{};
  rto.srto_assoc_id = SCTP_FUTURE_ASSOC;
  rto.srto_initial = options_.rto_initial_ms;
  rto.srto_min = options_.rto_min_ms;
  rto.srto_max = options_.rto_max_ms;
  set_option(fd, IPPROTO_SCTP, SCTP_RTOINFO, rto, "SCTP_RTOINFO");
  // Path supervision from the udp transport's knobs: a heartbeat every probe_interval_ms (the
  // kernel adds the path's RTO and jitter), a path potentially failed after its first timeout
  // (data moves to another path at once), and inactive after failover_ms worth of RTO_min
  // timeouts (at least 2).
  std::uint16_t path_max_rxt = static_cast<std::uint16_t>(
      std::clamp<std::uint32_t>(options_.failover_ms / std::max(1u, options_.rto_min_ms), 2, 10));
  sctp_paddrparams params{};
  params.spp_assoc_id = SCTP_FUTURE_ASSOC;
  params.spp_address.ss_family = static_cast<sa_family_t>(family);  // wildcard: every path
  params.spp_hbinterval = options_.probe_interval_ms;
  params.spp_pathmaxrxt = path_max_rxt;
  params.spp_flags = SPP_HB_ENABLE;
  set_option(fd, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, params, "SCTP_PEER_ADDR_PARAMS");
  sctp_paddrthlds thresholds{};
  thresholds.spt_assoc_id = SCTP_FUTURE_ASSOC;
  thresholds.spt_address.ss_family = static_cast<sa_family_t>(family);
  thresholds.spt_pathmaxrxt = path_max_rxt;
  thresholds.spt_pathpfthld = 0;
  set_option(fd, IPPROTO_SCTP, SCTP_PEER_ADDR_THLDS, thresholds, "SCTP_PEER_ADDR_THLDS");
  if (options_.udp_encapsulation && !peers_.empty() && !peers_[0].remotes.empty()) {
    // The peers' UDP port for associations we start (one per socket: the first peer's; a peer
    // that starts an association is answered on the port its INIT came from).
    sctp_udpencaps encaps{};
    encaps.sue_assoc_id = SCTP_FUTURE_ASSOC;
    encaps.sue_address.ss_family = static_cast<sa_family_t>(family);
    encaps.sue_port = htons(peers_[0].remotes[0].port());
    if (setsockopt(fd, IPPROTO_SCTP, SCTP_REMOTE_UDP_ENCAPS_PORT, &encaps, sizeof encaps) != 0)
      throw std::system_error(errno, std::generic_category(), "SCTP_REMOTE_UDP_ENCAPS_PORT");
  }

  auto port = static_cast<std::uint16_t>(options_.sctp_port + slot);
  std::vector<base::Endpoint> locals;
  for (const base::Endpoint& ep : options_.locals) {
    if (!ep.is_wildcard()) locals.push_back(ep);
  }
  if (locals.empty()) {  // all of the host's addresses
    base::Endpoint any = wildcard(family);
    any.set_port(port);
    if (bind(fd, any.sockaddr_ptr(), any.sockaddr_len()) != 0)
      throw std::system_error(errno, std::generic_category(),
                              "kernel SCTP bind " + any.to_string());
  } else {
    std::vector<std::uint8_t> packed = pack(locals, port);
    if (sctp_bindx(fd, reinterpret_cast<sockaddr*>(packed.data()), static_cast<int>(locals.size()),
                   SCTP_BINDX_ADD_ADDR) != 0)
      throw std::system_error(
          errno, std::generic_category(),
          "kernel SCTP bind to the [transport] local addresses, port " + std::to_string(port));
  }
  if (listen(fd, 64) != 0)
    throw std::system_error(errno, std::generic_category(), "kernel SCTP listen");
  SlotSocket* raw = s.get();
  s->reader = std::make_unique<base::IoWatcher>(loop_, fd, base::kRead,
                                                [this, raw](int) { on_readable(*raw); });
  s->writer = std::make_unique<base::IoWatcher>(loop_, fd, base::kWrite, [this, raw](int) {
    raw->writer->stop();
    if (events_) events_->on_writable();
  });
  sockets_.push_back(std::move(s));
}

}  // namespace transport::kernel
