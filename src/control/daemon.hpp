#pragma once
// Daemon: owns the running gateway's parts. Construction order is dependency order; members are
// declared in that order, so they stop in reverse:
//   config -> event loop -> netlink -> TUN (created, MTU, addresses, up) -> [[route]]s into it
//   -> bypass routing (table, rules, marked raw sockets) -> transport (marked UDP sockets)
//   -> gateway (pipeline) -> control socket -> signals.

#include <memory>
#include <string>

#include "src/base/event_loop.hpp"
#include "src/control/commands.hpp"
#include "src/control/config.hpp"
#include "src/control/control.hpp"
#include "src/control/route_set.hpp"
#include "src/gateway/gateway.hpp"
#include "src/transport/transport.hpp"
#include "tun/bypass.hpp"
#include "tun/device.hpp"
#include "tun/netlink.hpp"

namespace control {

class Daemon {
 public:
  // Builds every part; throws std::runtime_error (or std::system_error) naming what failed.
  explicit Daemon(control::Config config);
  ~Daemon();
  // Runs until SIGINT or SIGTERM.
  void run();
  // Re-reads the config file and applies policy and route changes; returns "ok: ..." or
  // "error: ..." (then the old config stays in force).
  std::string reload();

 private:
  std::string handle_request(std::string_view request);
  commands::Snapshot snapshot();  // for show
  // The [transport] kind's backend (auto: kernel if the kernel has SCTP, else udp), logged.
  std::unique_ptr<transport::Transport> make_transport();

  control::Config config_;
  std::vector<transport::PeerEndpoints> peer_endpoints_;
  base::EventLoop loop_;
  double started_at_ = 0;
  std::unique_ptr<tun::Netlink> netlink_;
  std::unique_ptr<tun::Device> tun_;
  std::unique_ptr<control::RouteSet> routes_;
  std::unique_ptr<tun::Bypass> bypass_;
  std::unique_ptr<base::IoWatcher> bypass_watch_;
  std::unique_ptr<gateway::BypassPath> bypass_path_;
  std::unique_ptr<transport::Transport> transport_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<base::Signal> sigint_, sigterm_, sighup_;
};

}  // namespace control
