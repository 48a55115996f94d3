#include "src/daemon.hpp"

#include <csignal>
#include <random>

#include "src/commands.hpp"
#include "src/log.hpp"
#include "src/transport_usrsctp.hpp"
#include "tun/linux_tun.hpp"

#ifndef SCTPTUND_VERSION
#define SCTPTUND_VERSION "dev"
#endif

namespace daemon_ {

Daemon::Daemon(config::Config config) : config_(std::move(config)) {
  for (const std::string& warning : config_.warnings)
    LOG_WARN("%s: %s", config_.path.c_str(), warning.c_str());
  for (const config::PeerConfig& peer : config_.peers)
    peer_endpoints_.push_back({peer.name, peer.remote});
  started_at_ = loop_.now();

  netlink_ = std::make_unique<tun::Netlink>();
  tun_ = tun::LinuxTun::open(config_.tun.name, config_.tun.mtu);
  for (const config::InterfaceAddress& address : config_.tun.addresses)
    netlink_->add_address(config_.tun.name, address.text);
  netlink_->set_up(config_.tun.name);
  LOG_INFO("interface %s up, mtu %d", tun_->name().c_str(), tun_->mtu());

  transport::UsrsctpOptions options;
  options.locals = config_.transport.local;
  options.sctp_port = config_.transport.port;
  options.streams = config_.transport.streams;
  transport_ = std::make_unique<transport::UsrsctpTransport>(loop_, options, peer_endpoints_);
  for (const net::Endpoint& local : config_.transport.local)
    LOG_INFO("transport udp: SCTP over UDP on %s", local.to_string().c_str());

  gateway::Options gateway_options;
  for (const config::PeerConfig& peer : config_.peers)
    gateway_options.peer_names.push_back(peer.name);
  gateway_options.instance = std::random_device{}();
  gateway_ = std::make_unique<gateway::Gateway>(loop_, *tun_, *transport_,
                                                policy::Policy(config_.rules, policy::Action::drop),
                                                gateway_options);

  control_ = std::make_unique<control::ControlServer>(
      loop_, config_.control.socket,
      [this](std::string_view request) { return handle_request(request); });

  auto stop = [this] {
    LOG_INFO("stopping");
    loop_.stop();
  };
  sigint_ = std::make_unique<loop::Signal>(loop_, SIGINT, stop);
  sigterm_ = std::make_unique<loop::Signal>(loop_, SIGTERM, stop);
}

Daemon::~Daemon() = default;

void Daemon::run() {
  transport_->start();
  LOG_INFO("running: %zu peer(s), %zu policy rule(s), control socket %s", config_.peers.size(),
           config_.rules.size(), config_.control.socket.c_str());
  loop_.run();
}

std::string Daemon::show(bool json) {
  commands::Snapshot snapshot =
      commands::take_snapshot(*gateway_, *transport_, *tun_, peer_endpoints_);
  snapshot.version = SCTPTUND_VERSION;
  snapshot.uptime_seconds = loop_.now() - started_at_;
  return json ? commands::render_json(snapshot) : commands::render_text(snapshot);
}

std::string Daemon::handle_request(std::string_view request) {
  if (request == "show") return show(false);
  if (request == "show json") return show(true);
  if (request == "ping") return "pong\n";
  return "error: unknown request '" + std::string(request) + "'\n";
}

}  // namespace daemon_
