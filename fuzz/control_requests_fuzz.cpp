// libFuzzer target for the control socket's requests (src/control/control.hpp, parse_request;
// src/control/commands.hpp, handle): the bytes a client sends, read in pieces as the server
// reads them, up to the request and its reply. Built and run by fuzz/run.sh control_requests.
//
// The first input byte says how the client sends: bits 0-6 the size of each read (1..128
// bytes), bit 7 whether it closes its end after the last byte. The rest is what it sends. The
// bytes after its first newline (never part of a request) also name the parts of the snapshot
// that show renders (interface, peer, remote, path, association state, last handshake failure),
// so the renderers see every byte value in their strings. Whatever the bytes, no crash, no
// exception, no undefined behaviour, and:
//  - the server waits only while it has no newline, at most kMaxRequest bytes and the client
//    may send more; then the request is exactly the bytes before the first newline (all of them
//    when closed without one), 1..kMaxRequest bytes; longer ones are refused with kTooLongReply;
//    nothing before the newline and the connection closes without a reply;
//  - every reply ends with a newline; the reply to an unknown request is one line of printable
//    ASCII whose quoted part unescapes to the request's first 64 bytes ("'..." when cut);
//  - "show json" is well-formed JSON, and valid UTF-8 whenever the names are.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "src/control/commands.hpp"
#include "src/control/control.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? b : b & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 2) return false;
      cp = cp << 6 | (c & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

// A strict JSON checker (RFC 8259 grammar; strings: no raw control characters, valid escapes).
struct JsonChecker {
  std::string_view s;
  std::size_t i = 0;
  int depth = 0;
  bool at(char c) const { return i < s.size() && s[i] == c; }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  bool literal(std::string_view word) {
    if (s.substr(i, word.size()) != word) return false;
    i += word.size();
    return true;
  }
  bool digits() {
    std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  }
  bool number() {
    if (at('-')) ++i;
    if (at('0')) {
      ++i;
    } else if (!digits()) {
      return false;
    }
    if (at('.')) {
      ++i;
      if (!digits()) return false;
    }
    if (at('e') || at('E')) {
      ++i;
      if (at('+') || at('-')) ++i;
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {
    if (!at('"')) return false;
    for (++i; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (++i >= s.size()) return false;
      char e = s[i];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k) {
          if (++i >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    return false;
  }
  bool value() {
    if (++depth > 64) return false;
    ws();
    bool ok;
    if (at('{') || at('[')) {
      char close = at('{') ? '}' : ']';
      bool object = close == '}';
      ++i;
      ws();
      ok = true;
      if (at(close)) {
        ++i;
      } else {
        for (;;) {
          if (object) {
            ws();
            if (!string()) return false;
            ws();
            if (!at(':')) return false;
            ++i;
          }
          if (!value()) return false;
          ws();
          if (at(',')) {
            ++i;
            continue;
          }
          if (!at(close)) return false;
          ++i;
          break;
        }
      }
    } else if (at('"')) {
      ok = string();
    } else if (at('t') || at('f') || at('n')) {
      ok = literal("true") || literal("false") || literal("null");
    } else {
      ok = number();
    }
    --depth;
    return ok;
  }
  bool document() {
    if (!value()) return false;
    ws();
    return i == s.size();
  }
};

// The request as the quoted part of an "unknown request" reply shows it, escapes undone.
std::string unescape(std::string_view shown) {
  std::string out;
  for (std::size_t i = 0; i < shown.size(); ++i) {
    if (shown[i] == '\\') {
      check(i + 3 < shown.size() && shown[i + 1] == 'x');
      out += static_cast<char>(std::stoi(std::string(shown.substr(i + 2, 2)), nullptr, 16));
      i += 3;
    } else {
      out += shown[i];
    }
  }
  return out;
}

control::commands::Snapshot snapshot_named(std::string_view names) {
  std::vector<std::string> name;
  while (name.size() < 6) {
    std::size_t end = names.find('\n');
    name.emplace_back(names.substr(0, end));
    names = end == std::string_view::npos ? std::string_view() : names.substr(end + 1);
  }
  control::commands::Snapshot s;
  s.version = "0.1.0";
  s.interface_name = name[0];
  s.transport_kind = "udp";
  s.mtu = 1400;
  s.uptime_seconds = static_cast<double>(names.size()) * 1.5;
  control::commands::PeerSnapshot peer;
  peer.name = name[1];
  peer.remotes = {name[2]};
  peer.last_handshake_failure = name[5];
  peer.up = names.size() % 2;
  control::commands::AssocSnapshot assoc;
  assoc.info.id = 7;
  assoc.info.state = name[4];
  assoc.info.path = name[3];
  assoc.ready = true;
  assoc.security = name[1];
  transport::PathInfo path;
  path.local = name[0];
  path.remote = name[3];
  path.state = name[4];
  path.fec = "on";
  path.fec_loss = static_cast<double>(names.size() % 101) / 100;
  assoc.info.paths.push_back(path);
  peer.associations.push_back(assoc);
  s.peers.push_back(peer);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = (data[0] & 0x7f) + 1;
  const bool closes = data[0] & 0x80;
  const std::string_view sent(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t newline = sent.find('\n');
  const std::string_view names =
      newline == std::string_view::npos ? std::string_view() : sent.substr(newline + 1);
  bool names_utf8 = valid_utf8(names);

  // The server's reads: pieces of the client's bytes until the request is decided.
  using Kind = control::ParsedRequest::Kind;
  std::string received;
  control::ParsedRequest parsed;
  for (std::size_t at = 0; at < sent.size(); at += piece) {
    received.append(sent.substr(at, piece));
    parsed = control::parse_request(received, false);
    if (parsed.kind != Kind::incomplete) break;
    check(received.find('\n') == std::string::npos && received.size() <= control::kMaxRequest);
  }
  if (parsed.kind == Kind::incomplete && closes) parsed = control::parse_request(received, true);
  const std::string_view line = std::string_view(received).substr(0, received.find('\n'));
  switch (parsed.kind) {
    case Kind::incomplete:
      check(!closes && received.size() == sent.size());
      return 0;
    case Kind::empty:
      check(line.empty());
      return 0;
    case Kind::too_long:
      check(line.size() > control::kMaxRequest);
      return 0;
    case Kind::line:
      check(parsed.request == line && line == sent.substr(0, newline));
      check(!line.empty() && line.size() <= control::kMaxRequest);
      break;
  }

  int reloads = 0;
  control::commands::Requests requests{[&] { return snapshot_named(names); },
                                       [&] {
                                         ++reloads;
                                         return std::string("ok: reloaded\n");
                                       }};
  std::string reply = control::commands::handle(parsed.request, requests);
  check(!reply.empty() && reply.back() == '\n');
  const std::string_view request = parsed.request;
  if (request == "show json") {
    JsonChecker json{reply};
    check(json.document());
    if (names_utf8) check(valid_utf8(reply));
  } else if (request == "reload") {
    check(reloads == 1);
  } else if (request != "show" && request != "ping") {
    const std::string_view head = "error: unknown request '";
    check(reply.starts_with(head));
    for (std::size_t i = 0; i + 1 < reply.size(); ++i) check(reply[i] >= 0x20 && reply[i] < 0x7f);
    bool cut = request.size() > 64;
    std::string_view tail = cut ? "'...\n" : "'\n";
    check(reply.ends_with(tail));
    std::string_view shown(reply);
    shown = shown.substr(head.size(), shown.size() - head.size() - tail.size());
    check(unescape(shown) == request.substr(0, 64));
  }
  return 0;
}
