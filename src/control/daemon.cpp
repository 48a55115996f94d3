#include "src/control/daemon.hpp"

#include <algorithm>
#include <csignal>
#include <optional>
#include <random>

#include "src/base/log.hpp"
#include "src/control/commands.hpp"
#include "src/control/sd_notify.hpp"
#include "src/transport/kernel/kernel_transport.hpp"
#include "src/transport/udp/usrsctp_transport.hpp"
#include "tun/linux_tun.hpp"

#ifndef SCTPTUND_VERSION
#define SCTPTUND_VERSION "dev"
#endif

namespace control {
namespace {

class HostBypass final : public gateway::BypassPath {
 public:
  explicit HostBypass(tun::Bypass& bypass) : bypass_(bypass) {}
  bool send(std::span<const std::uint8_t> packet) override {
    return bypass_.send(packet) == tun::Bypass::SendResult::ok;
  }

 private:
  tun::Bypass& bypass_;
};

gateway::Timeouts flow_timeouts(const control::Config& config) {
  gateway::Timeouts t;
  t.tcp_idle = config.flows.tcp_idle_s;
  t.udp_idle = config.flows.udp_idle_s;
  t.other_idle = config.flows.other_idle_s;
  t.linger = config.flows.linger_s;
  return t;
}

std::vector<policy::Prefix> route_prefixes(const control::Config& config) {
  std::vector<policy::Prefix> out;
  for (const control::RouteConfig& route : config.routes) out.push_back(route.prefix);
  return out;
}

// The longest the daemon waits for a first ready association before it tells systemd it is ready
// anyway (the TUN interface is up; a peer that is down must not fail the unit's start).
constexpr double kReadyMaxWaitS = 10;

}  // namespace

Daemon::Daemon(control::Config config) : config_(std::move(config)) {
  for (const std::string& warning : config_.warnings)
    LOG_WARN("%s: %s", config_.path.c_str(), warning.c_str());
  for (const control::PeerConfig& peer : config_.peers) {
    transport::PeerEndpoints endpoints{peer.name, peer.remote, peer.pool, std::nullopt};
    if (peer.key) endpoints.path_key = transport::path_auth::derive(*peer.key);
    endpoints.fec = peer.fec && peer.key;
    peer_endpoints_.push_back(std::move(endpoints));
  }
  started_at_ = loop_.now();

  netlink_ = std::make_unique<tun::Netlink>();
  auto tun =
      tun::LinuxTun::open(config_.tun.name, config_.tun.mtu, {.vnet_hdr = config_.tun.offload});
  if (config_.tun.offload && !tun->offloads())
    LOG_WARN("interface %s: the kernel refused TUN offloads (TSO/checksum): one packet per read",
             config_.tun.name.c_str());
  bool offloads = tun->offloads();
  tun_ = std::move(tun);
  for (const control::InterfaceAddress& address : config_.tun.addresses)
    netlink_->add_address(config_.tun.name, address.text);
  netlink_->set_up(config_.tun.name);
  LOG_INFO("interface %s up, mtu %d, offloads %s", tun_->name().c_str(), tun_->mtu(),
           offloads ? "on (GSO super-packets up to 64 KB)" : "off");
  routes_ = std::make_unique<control::RouteSet>(*netlink_, config_.tun.name);
  routes_->apply(route_prefixes(config_));

  bypass_ =
      std::make_unique<tun::Bypass>(config_.tun.name, config_.tun.fwmark, config_.tun.bypass_table,
                                    tun::Bypass::kDefaultRulePriority);
  bypass_watch_ = std::make_unique<base::IoWatcher>(loop_, bypass_->fd(), base::kRead,
                                                    [this](int) { bypass_->on_readable(); });
  bypass_watch_->start();
  bypass_path_ = std::make_unique<HostBypass>(*bypass_);
  LOG_INFO("bypass: fwmark %u, routing table %u (main without %s)", config_.tun.fwmark,
           config_.tun.bypass_table, config_.tun.name.c_str());

  transport_ = make_transport();

  gateway::Options gateway_options;
  for (const control::PeerConfig& peer : config_.peers) {
    gateway_options.peer_names.push_back(peer.name);
    gateway::PeerSecurity security;
    security.psk = peer.key;
    security.seal = peer.seal;
    security.compression = peer.compression;
    security.fec = peer.fec;
    security.stripe = config_.transport.multipath == "aggregate" && config_.transport.stripe;
    gateway_options.peer_security.push_back(security);
  }
  gateway_options.instance = std::random_device{}();
  gateway_options.gro = config_.tun.gro;
  gateway_options.max_flows = config_.flows.max;
  gateway_options.max_flows_per_peer = config_.flows.max_per_peer;
  gateway_options.max_flows_per_host = config_.flows.max_per_host;
  gateway_options.flow_timeouts = flow_timeouts(config_);
  gateway_ = std::make_unique<gateway::Gateway>(loop_, *tun_, *transport_, bypass_path_.get(),
                                                control::make_policy(config_), gateway_options);

  control_ = std::make_unique<control::ControlServer>(
      loop_, config_.control.socket,
      [this](std::string_view request) { return handle_request(request); });

  auto stop = [this] {
    LOG_INFO("stopping");
    control::sd_notify::send("STOPPING=1");
    loop_.stop();
  };
  sigint_ = std::make_unique<base::Signal>(loop_, SIGINT, stop);
  sigterm_ = std::make_unique<base::Signal>(loop_, SIGTERM, stop);
  sighup_ = std::make_unique<base::Signal>(loop_, SIGHUP, [this] { reload(); });
}

Daemon::~Daemon() = default;

std::unique_ptr<transport::Transport> Daemon::make_transport() {
  const control::TransportConfig& t = config_.transport;
  std::string kind = t.kind;
  if (kind == "auto") {
    std::string why;
    bool learning = std::any_of(config_.peers.begin(), config_.peers.end(),
                                [](const control::PeerConfig& p) { return p.remote.empty(); });
    if (learning) why = "a peer without remote needs address learning";
    kind = !learning && transport::kernel::kernel_sctp_available(&why) ? "kernel" : "udp";
    LOG_INFO("transport auto: %s",
             kind == "kernel" ? "the kernel has SCTP: kernel" : ("udp (" + why + ")").c_str());
  }
  transport::SctpOptions common;
  common.locals = t.local;
  common.sctp_port = t.port;
  common.streams = t.streams;
  common.fwmark = config_.tun.fwmark;
  control::RtoBounds rto = control::rto_bounds(t, kind != "kernel");
  common.rto_initial_ms = rto.initial_ms;
  common.rto_min_ms = rto.min_ms;
  common.rto_max_ms = rto.max_ms;
  common.socket_buffer = static_cast<int>(t.max_window);
  common.probe_interval_ms = t.probe_interval_ms;
  common.failover_ms = t.failover_ms;
  if (kind == "kernel") {
    transport::kernel::KernelOptions options;
    static_cast<transport::SctpOptions&>(options) = common;
    options.udp_encapsulation = t.udp_encapsulation;
    auto transport =
        std::make_unique<transport::kernel::KernelTransport>(loop_, options, peer_endpoints_);
    LOG_INFO("transport kernel: %s, SCTP port %u%s",
             t.udp_encapsulation ? "SCTP over UDP by the kernel" : "native SCTP", unsigned{t.port},
             t.udp_encapsulation ? ", UDP port the same" : "");
    if (t.udp_encapsulation)
      LOG_WARN(
          "transport kernel: Linux 6.1 mishandles segmentation offload with SCTP in UDP (sent SCTP "
          "GSO "
          "packets arrive broken; UDP GSO packets arriving unsegmented, as over veth, crash it): "
          "turn it "
          "off on the WAN devices: ethtool -K DEV gso off tx-sctp-segmentation off "
          "tx-udp-segmentation off");
    return transport;
  }
  transport::udp::UsrsctpOptions options;
  static_cast<transport::SctpOptions&>(options) = common;
  options.heartbeat_ms = t.heartbeat_ms;
  options.keepalive_s = t.keepalive_s;
  options.wan_mtu = t.path_mtu;
  options.congestion_control = t.congestion_control == "htcp"    ? 2
                               : t.congestion_control == "hstcp" ? 1
                                                                 : 0;
  options.fec_max_overhead = t.fec_max_overhead / 100.0;
  options.window_cap = t.window_cap;
  options.aggregate = t.multipath == "aggregate";
  return std::make_unique<transport::udp::UsrsctpTransport>(loop_, options, peer_endpoints_);
}

void Daemon::run() {
  transport_->start();
  LOG_INFO("running: %zu peer(s), %zu policy rule(s), %zu route(s), default %s, control socket %s",
           config_.peers.size(), config_.rules.size(), config_.routes.size(),
           policy::to_string(config_.tun.default_action), config_.control.socket.c_str());
  // systemd (Type=notify): READY=1 once the first association has finished its handshake, or
  // after a bounded wait without one; STATUS= as associations come and go. Polled: 10 per second
  // until ready, then once a second.
  std::optional<base::Timer> notify_timer;
  control::sd_notify::Readiness readiness(kReadyMaxWaitS);
  if (control::sd_notify::enabled())
    notify_timer.emplace(loop_, 0., 0., [&] {
      std::size_t assocs_ready = 0, peers_up = 0;
      for (const gateway::PeerStatus& peer : gateway_->peers()) {
        assocs_ready += peer.ready_assocs.size();
        peers_up += peer.ready_assocs.empty() ? 0 : 1;
      }
      std::string message = readiness.update(assocs_ready, peers_up, gateway_->peers().size(),
                                             loop_.now() - started_at_);
      if (!message.empty()) control::sd_notify::send(message);
      notify_timer->start(readiness.ready() ? 1. : 0.1);
    });
  if (notify_timer) notify_timer->start();
  loop_.run();
}

std::string Daemon::reload() {
  control::sd_notify::ReloadScope notify_reload;  // RELOADING=1 now, READY=1 on every way out
  control::Config next;
  try {
    next = control::load_config(config_.path);
  } catch (const std::exception& error) {
    LOG_ERROR("reload refused, the running config stays in force: %s", error.what());
    return std::string("error: ") + error.what() + "\n";
  }
  std::vector<std::string> fixed = control::restart_needed(config_, next);
  if (!fixed.empty()) {
    std::string what;
    for (const std::string& part : fixed) what += (what.empty() ? "" : ", ") + part;
    LOG_ERROR(
        "reload refused, the running config stays in force: %s changed, which needs a restart",
        what.c_str());
    return "error: " + what + " changed; restart sctptund to apply that\n";
  }
  try {
    routes_->apply(route_prefixes(next));
  } catch (const std::exception& error) {
    LOG_ERROR("reload: routes: %s", error.what());
    return std::string("error: routes: ") + error.what() + "\n";
  }
  gateway_->set_policy(control::make_policy(next));
  gateway_->set_flow_timeouts(flow_timeouts(next));
  for (const std::string& warning : next.warnings)
    LOG_WARN("%s: %s", next.path.c_str(), warning.c_str());
  config_ = std::move(next);
  LOG_INFO("config reloaded: %zu policy rule(s), %zu route(s), default %s", config_.rules.size(),
           config_.routes.size(), policy::to_string(config_.tun.default_action));
  return "ok: reloaded " + config_.path + ": " + std::to_string(config_.rules.size()) +
         " policy rule(s), " + std::to_string(config_.routes.size()) + " route(s)\n";
}

commands::Snapshot Daemon::snapshot() {
  commands::Snapshot snapshot =
      commands::take_snapshot(*gateway_, *transport_, *tun_, peer_endpoints_);
  snapshot.version = SCTPTUND_VERSION;
  snapshot.uptime_seconds = loop_.now() - started_at_;
  return snapshot;
}

std::string Daemon::handle_request(std::string_view request) {
  return commands::handle(request, {[this] { return snapshot(); }, [this] { return reload(); }});
}

}  // namespace control
