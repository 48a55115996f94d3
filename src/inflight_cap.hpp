#pragma once
// How much data one association may keep in flight (pure logic, time passed in): a cap on
// SCTP's congestion window that follows the path's measured bandwidth-delay product.
//
// Why: SCTP's congestion control (usrsctp: Reno-like) grows its window until a loss, and with
// FEC below it most losses never reach it, so nothing stops the window at the path's capacity:
// the excess waits in the queue in front of the narrowest link (measured over a 20 ms WAN: 7 MB
// in flight where 1.5 MB fill the path, pings 500 ms late). A queue that long also makes
// usrsctp's retransmission timer mark the whole window as lost (it resends every chunk older
// than its RTT estimate when the timer fires). Capped at a few times the bandwidth-delay
// product, the queue on the path stays short; what the senders behind the TUN send beyond it
// waits in the association's send buffer instead, where every flow has its own stream and the
// streams take turns, so a ping does not wait behind a bulk transfer.
//
//   bandwidth = the highest delivery rate (bytes acknowledged per interval) of the last
//               `bandwidth_window` seconds
//   rtt_min   = the lowest smoothed RTT of the last `rtt_window` seconds
//   cap       = max(min_cap, gain * bandwidth * rtt_min)
// The gain leaves room for the delivery rate to grow: 2 at first (the cap doubles as fast as the
// data delivered does, as in BBR's startup), 1.25 once the pipe is full: three intervals in a
// row in which data waited for the window (`limited`) and the bandwidth grew by less than a
// quarter (BBR's full-pipe test). Then our own queue on the path is at most a quarter of a
// bandwidth-delay product: at 100 ms and 1 Gbit/s 3 MB instead of 12, which a router's buffer
// holds; the cap still grows by a quarter per interval when more gets through, and once twice
// the bandwidth found "full" gets through, it was not (the senders had sent little then, e.g.
// only acknowledgements): gain 2 again until the next full-pipe test says so. A smoothed RTT
// above 2.5 * rtt_min for `rtt_raise` seconds is not ours: the path got longer (a route
// change, another path) or someone else's queue grew; rtt_min is raised to it at once (and the
// pipe is filled afresh) instead of starving the path with a cap made for the shorter RTT until
// the window forgets it.

#include <cstdint>
#include <deque>

namespace transport {

struct InflightCapOptions {
  double gain = 2.0;          // until the pipe is full
  double steady_gain = 1.25;  // once it is
  double full_growth = 1.25;  // bandwidth growth per interval that means "not full yet"
  int full_intervals = 3;     // intervals without that growth (window-limited): full
  std::uint64_t min_cap = 256 << 10;  // bytes: never less (a slow start needs room to grow)
  double bandwidth_window = 2.0;      // seconds of delivery-rate samples behind `bandwidth`
  double rtt_window = 10.0;           // seconds of RTT samples behind `rtt_min`
  double rtt_raise = 1.0;             // seconds of RTTs beyond what the cap explains: raised
  double interval = 0.2;              // seconds: delivery rate is measured over at least this
                                      // and two RTTs (bursts of acknowledgements even out)
};

class InflightCap {
 public:
  explicit InflightCap(InflightCapOptions options = {});
  // acked: bytes the association had acknowledged in all (cumulative); srtt: its smoothed RTT,
  // seconds (0: not known yet); limited: data is waiting for the window (else the senders, not
  // the path, set the delivery rate, and the interval says nothing about a full pipe).
  void sample(double now, std::uint64_t acked, double srtt, bool limited = true);
  // The cap in bytes; 0 while nothing is known (no cap).
  std::uint64_t cap() const { return cap_; }
  double bandwidth() const { return bandwidth_; }  // bytes per second
  double rtt_min() const { return rtt_min_; }      // seconds (0: not known)
  bool full() const { return full_; }              // the pipe was found full: steady gain

 private:
  struct Point {
    double at, value;
  };
  InflightCapOptions options_;
  bool started_ = false;
  double interval_start_ = 0;
  std::uint64_t interval_acked_ = 0;
  std::deque<Point> rates_, rtts_;  // monotonic deques: max of rates, min of rtts
  double bandwidth_ = 0, rtt_min_ = 0;
  double high_since_ = -1;  // since when the RTT has been beyond what the cap explains
  bool interval_limited_ = false;  // data waited for the window during this interval
  bool full_ = false;
  double full_bandwidth_ = 0;  // the bandwidth the growth is measured against
  double full_at_ = 0;         // the bandwidth when the pipe was found full
  int flat_intervals_ = 0;     // window-limited intervals without growth since
  std::uint64_t cap_ = 0;
};

}  // namespace transport
