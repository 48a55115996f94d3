// sctptund: a TUN-interface gateway that carries IP packets to peer gateways over SCTP.
//
//   sctptund -c FILE [--log-level LEVEL]    run the gateway in the foreground
//   sctptund --check -c FILE                validate the config; exit 0 (valid) or 1
//   sctptund show [-c FILE | -s SOCKET] [--json]
//   sctptund reload [-c FILE | -s SOCKET]     re-read the config (like SIGHUP); exit 1 if refused
//   sctptund genkey                           print a new pre-shared key for a key_file
//   sctptund --version | --help
//
// Exit codes: 0 success, 1 failure (bad config, cannot start, daemon unreachable), 2 usage.

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "src/base/log.hpp"
#include "src/control/config.hpp"
#include "src/control/control.hpp"
#include "src/control/daemon.hpp"
#include "src/crypto/session.hpp"

#ifndef SCTPTUND_VERSION
#define SCTPTUND_VERSION "dev"
#endif

namespace {

constexpr const char* kUsage =
    "usage: sctptund -c FILE [--log-level debug|info|warn|error]\n"
    "       sctptund --check -c FILE\n"
    "       sctptund show [-c FILE | -s SOCKET] [--json]\n"
    "       sctptund reload [-c FILE | -s SOCKET]\n"
    "       sctptund genkey                  print a new pre-shared key (base64) for key_file\n"
    "       sctptund --version | --help\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "sctptund: %s\n%s", message.c_str(), kUsage);
  return 2;
}

struct Args {
  std::string command = "run";  // run | check | show | reload
  std::string config_path;
  std::string socket_path;
  bool json = false;
  std::string log_level;
};

// Returns -1 when parsing succeeded, otherwise the exit code.
int parse_args(int argc, char** argv, Args& args) {
  std::vector<std::string> words(argv + 1, argv + argc);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    auto value = [&](const char* option) -> const std::string* {
      if (i + 1 >= words.size()) return nullptr;
      (void)option;
      return &words[++i];
    };
    if (w == "-h" || w == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (w == "--version") {
      std::printf("sctptund %s\n", SCTPTUND_VERSION);
      return 0;
    } else if (w == "-c" || w == "--config") {
      const std::string* v = value("-c");
      if (!v) return usage_error(w + " needs a file");
      args.config_path = *v;
    } else if (w == "-s" || w == "--socket") {
      const std::string* v = value("-s");
      if (!v) return usage_error(w + " needs a path");
      args.socket_path = *v;
    } else if (w == "--log-level") {
      const std::string* v = value("--log-level");
      if (!v) return usage_error("--log-level needs a level");
      args.log_level = *v;
    } else if (w == "--check") {
      args.command = "check";
    } else if (w == "--json") {
      args.json = true;
    } else if ((w == "show" || w == "reload" || w == "genkey") && i == 0) {
      args.command = w;
    } else {
      return usage_error("unexpected argument '" + w + "'");
    }
  }
  return -1;
}

// show and reload: one request to the running daemon's control socket.
int run_request(const Args& args) {
  std::string socket = args.socket_path;
  if (socket.empty()) {
    if (args.config_path.empty()) return usage_error(args.command + " needs -c FILE or -s SOCKET");
    socket = control::load_config(args.config_path, control::Keys::skip).control.socket;
  }
  std::string request = args.command == "show" ? (args.json ? "show json" : "show") : "reload";
  std::string reply = control::request(socket, request, 10);
  bool failed = reply.rfind("error:", 0) == 0;
  std::fputs(reply.c_str(), failed ? stderr : stdout);
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (int rc = parse_args(argc, argv, args); rc >= 0) return rc;
  if (!args.log_level.empty()) {
    base::log::Level level;
    if (!base::log::parse_level(args.log_level, level))
      return usage_error("unknown log level '" + args.log_level + "'");
    base::log::set_level(level);
  }
  if (!crypto::init()) {
    std::fprintf(stderr, "sctptund: libsodium cannot be initialised\n");
    return 1;
  }
  if (args.command == "genkey") {
    std::string key = crypto::generate_key();
    std::printf("%s\n", key.c_str());
    crypto::wipe(key);
    return 0;
  }
  try {
    if (args.command == "show" || args.command == "reload") return run_request(args);
    if (args.config_path.empty()) return usage_error("a config file is required (-c FILE)");
    control::Config config = control::load_config(args.config_path);
    if (args.command == "check") {
      for (const std::string& warning : config.warnings)
        std::fprintf(stderr, "warning: %s\n", warning.c_str());
      std::printf("%s: valid (%zu peer(s), %zu policy rule(s))\n", args.config_path.c_str(),
                  config.peers.size(), config.rules.size());
      return 0;
    }
    control::Daemon daemon(std::move(config));
    daemon.run();
    return 0;
  } catch (const control::ConfigError& error) {
    std::fprintf(stderr, "sctptund: %s\n", error.what());
    return 1;
  } catch (const std::exception& error) {
    LOG_ERROR("%s", error.what());
    return 1;
  }
}
