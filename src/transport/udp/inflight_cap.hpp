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
//   cap       = max(min_cap, bandwidth * time)
//   time      = gain * rtt_min                                  until the pipe is full
//               max(steady_gain * rtt_min, min(rtt_min + steady_headroom, gain * rtt_min))
//                                                               once it is
// Until the pipe is full the gain is 2 and the delivery rate is measured over the last RTT at
// every sample, so that the cap can double per RTT as SCTP's slow start does (measured over two
// RTTs, the cap held slow start to a doubling per two RTTs; over intervals of one RTT, to less
// than a doubling per RTT). The pipe is full after three intervals in a row in which
// the window held data back (`limited`, window_limited) and the bandwidth grew by less than a
// quarter (BBR's full-pipe test); then the rate is measured over at least two RTTs (bursts of
// acknowledgements even out) and our own queue on the path may be a quarter of rtt_min, or 20
// ms if that is more (but no more than while filling: on a LAN the floor, min_cap, as before): at
// 100 ms and 1 Gbit/s 3 MB instead of the 12 of gain 2, which a router's buffer holds (with gain 2
// at 100 ms, 8 streams overflowed the path's queue into seconds of stalls); at 20 ms as much as
// gain 2 (with a quarter, 5 ms, one stream at 20 ms and 1 % loss moved half as much,
// bench/README.md). The cap still grows when more gets through, and once twice the bandwidth found
// "full" gets through, it was not: startup again until the next full-pipe test says so. A smoothed
// RTT above 2.5 * rtt_min for `rtt_raise` seconds is not ours: the path got longer (a route change,
// another path) or someone else's queue grew; rtt_min is raised to it at once (and the pipe is
// filled afresh) instead of starving the path with a cap made for the shorter RTT until the window
// forgets it.

#include <cstdint>
#include <deque>

namespace transport::udp {

struct InflightCapOptions {
  double gain = 2.0;                  // until the pipe is full
  double steady_gain = 1.25;          // once it is
  double steady_headroom = 0.02;      // once it is, seconds of queue allowed at least
  double full_growth = 1.25;          // bandwidth growth per interval that means "not full yet"
  int full_intervals = 3;             // intervals without that growth (window-limited): full
  std::uint64_t min_cap = 256 << 10;  // bytes: never less (a slow start needs room to grow)
  double bandwidth_window = 2.0;      // seconds of delivery-rate samples behind `bandwidth`
  double rtt_window = 10.0;           // seconds of RTT samples behind `rtt_min`
  double rtt_raise = 1.0;             // seconds of RTTs beyond what the cap explains: raised
  double interval = 0.2;              // seconds: delivery rate is measured over at least this
                                      // and two RTTs (bursts of acknowledgements even out)
  double startup_interval = 0.05;     // until the pipe is full: at least this and one RTT
};

// What an association's SCTP says about its sending side.
struct SendState {
  std::uint64_t buffered = 0;       // bytes queued or in flight
  std::uint32_t flight_chunks = 0;  // DATA chunks in flight
  std::uint32_t chunk_max = 0;      // bytes: the most a DATA chunk carries (fragmentation point)
  std::uint64_t cwnd = 0;           // SCTP's congestion window, bytes
};

// The window holds data back (InflightCap::sample's `limited`): more is buffered than the chunks
// in flight can hold, and they could fill at least half the window (SCTP's, or `cap` when that
// is lower; 0: none). SCTP_STATUS's sstat_penddata does not say this: it counts chunks
// *received* and not yet delivered (RFC 6458); taken for data waiting to be sent, it marked the
// receiving end of a bulk transfer (reassembling its messages) window-limited, and the sending
// end only when the data coming back to it had a gap.
bool window_limited(const SendState& send, std::uint64_t cap);

class InflightCap {
 public:
  explicit InflightCap(InflightCapOptions options = {});
  // acked: bytes the association had acknowledged in all (cumulative); srtt: its smoothed RTT,
  // seconds (0: not known yet); limited: data is waiting for the window (else the senders, not
  // the path, set the delivery rate, and the interval says nothing about a full pipe).
  void sample(double now, std::uint64_t acked, double srtt, bool limited);
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
  void push_rate(double now, double rate);

  std::deque<Point> rates_, rtts_;  // monotonic deques: max of rates, min of rtts
  std::deque<Point> recent_;        // until the pipe is full: (time, bytes acked) of the last RTT
  double bandwidth_ = 0, rtt_min_ = 0;
  double high_since_ = -1;         // since when the RTT has been beyond what the cap explains
  bool interval_limited_ = false;  // data waited for the window during this interval
  bool full_ = false;
  double full_bandwidth_ = 0;  // the bandwidth the growth is measured against
  double full_at_ = 0;         // the bandwidth when the pipe was found full
  int flat_intervals_ = 0;     // window-limited intervals without growth since
  std::uint64_t cap_ = 0;
};

}  // namespace transport::udp
