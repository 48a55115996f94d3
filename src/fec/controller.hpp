#pragma once
// How much FEC a path gets (pure logic, time passed in): the sender's side of FEC below SCTP.
//
// A path starts without FEC: its datagrams are plain SCTP packets and cost nothing extra. The
// sender counts the DATA chunks SCTP sends again (retransmissions: the sender's own sign of
// loss); the first one switches framing on (each loss SCTP sees before parity is on halves its
// window: at 0.1 % loss, waiting for a third cost the first 3 s of a transfer). From then on every
// data datagram is numbered (fec_wire.hpp), the receiver reports what it found missing, and the
// redundancy follows that loss: the fewest parity datagrams per block that keep the residual loss
// (what parity could not rebuild, which SCTP then sees) below a target, within the overhead budget.
// Blocks closed early (by age, at lower rates) are small and need more parity per datagram for the
// same residual loss: the parity count is chosen per block size (parity_table), within max_overhead
// of the block's datagrams but at least 2 (small blocks are few bytes; a loss in a sparse stream,
// such as the acknowledgements flowing back, would otherwise wait for SCTP's retransmission
// timeout). Framing stays on for the life of the path (the SCTP packets were made smaller for it;
// SCTP does not grow them back), with no parity while the path is clean.
//
// Residual loss of a block of k data and m parity datagrams, each lost independently with
// probability p: the data lost in blocks with more than m losses, per data datagram,
//   R(k, m, p) = sum over L > m of Binom(L; k + m, p) * L / (k + m).

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace fec {

struct ControllerOptions {
  double max_overhead = 0.25;  // parity per data datagram, at most
  std::size_t block = 32;      // data datagrams per block (the sender's max_data)
  double target = 1e-6;        // residual loss per data datagram aimed at
  double margin = 1.5;         // the loss estimate is multiplied by this (losses come in bursts)
  std::uint64_t start_retransmits = 1;  // retransmitted chunks within `window` that start framing
  double window = 2.0;                  // seconds of history behind the loss estimate
};

// R(k, m, p) above.
double residual_loss(std::size_t k, std::size_t m, double p);
// The smallest m with R(k, m, p) <= target, at most max_m.
std::size_t parity_for(std::size_t k, double p, double target, std::size_t max_m);

// Whether SCTP's congestion control may start afresh after a loss cut its window while parity
// was on (transport_usrsctp_fec.cpp), judged on the receiver's reports since the restart was
// scheduled: `lost` datagrams went missing among `received + lost`, `unrecovered` of them parity
// could not rebuild; `waited` seconds since the scheduling.
//   restart: parity repaired half of the losses or more and the loss is below 5 %: random losses
//            (parity is sized for the loss of the last seconds, and some slip through while it
//            adapts), which SCTP should not have answered by halving its window;
//   refuse:  losses in bursts parity cannot repair, or heavy loss: a queue overflowing
//            (congestion), where the lowered window is right;
//   wait:    fewer than `min_losses` losses and less than `max_wait` seconds: too few to tell
//            (one lost datagram parity did not yet cover would otherwise refuse the restart and
//            leave the window growing by a packet per round trip for the rest of the transfer).
enum class RestartVerdict { restart, refuse, wait };
struct RestartEvidence {
  std::uint32_t received = 0, lost = 0, unrecovered = 0;
  double waited = 0;
};
RestartVerdict restart_verdict(const RestartEvidence& e, std::uint32_t min_losses = 4,
                               double max_wait = 4.0);

class Controller {
 public:
  explicit Controller(ControllerOptions options = {});

  // While framing is off: the cumulative DATA chunks SCTP sent and retransmitted on the path.
  void on_sctp(std::uint64_t sent, std::uint64_t retransmitted, double now);
  // While framing is on: the receiver's cumulative counters (a REPORT; wrapping mod 2^32).
  void on_report(std::uint32_t received, std::uint32_t lost, double now);

  bool framing() const { return framing_; }
  double redundancy() const { return redundancy_; }  // parity per data datagram of a full block
  // Parity datagrams for a block of n data datagrams, n = 1..kMaxData (fec_sender.hpp).
  const std::array<std::uint8_t, 65>& parity_table() const { return table_; }
  double loss() const { return loss_; }              // estimated loss before FEC, 0..1
  double started_at() const { return started_at_; }  // when framing began (-1: not yet)

 private:
  struct Sample {
    double at;
    std::uint64_t a, b;  // sent/retransmitted (framing off) or received/lost (on)
  };
  void expire(double now);
  void update();

  ControllerOptions options_;
  bool framing_ = false;
  double redundancy_ = 0, loss_ = 0, started_at_ = -1;
  std::array<std::uint8_t, 65> table_{};
  std::deque<Sample> samples_;
  std::uint64_t last_sent_ = 0, last_retransmitted_ = 0;
  bool have_sctp_ = false, have_report_ = false;
  std::uint32_t last_received_ = 0, last_lost_ = 0;
};

}  // namespace fec
