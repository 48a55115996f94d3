#include "src/transport/udp/delivery_meter.hpp"

namespace transport::udp {

void DeliveryMeter::sample(double now, std::uint64_t acked) {
  if (count_ > 0 && acked < ring_[(next_ + kSamples - 1) % kSamples].acked) count_ = 0;
  ring_[next_] = {now, acked};
  next_ = (next_ + 1) % kSamples;
  if (count_ < kSamples) ++count_;
}

double DeliveryMeter::rate(double span) const {
  if (count_ < 2) return 0;
  const Point& newest = ring_[(next_ + kSamples - 1) % kSamples];
  // From the newest backwards, the first sample at least `span` older than the newest.
  const Point* from = nullptr;
  for (std::size_t back = 1; back < count_; ++back) {
    from = &ring_[(next_ + kSamples - 1 - back) % kSamples];
    if (newest.at - from->at >= span) break;
  }
  double dt = newest.at - from->at;
  return dt > 0 ? static_cast<double>(newest.acked - from->acked) / dt : 0;
}

}  // namespace transport::udp
