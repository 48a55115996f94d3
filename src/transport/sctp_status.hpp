#pragma once
// What SCTP_STATUS (RFC 6458 8.2.1) says about an association, into its listing (AssocInfo). Both
// socket APIs (usrsctp's and the kernel's <netinet/sctp.h>) have a struct sctp_status with these
// field names, but they are different types from headers that cannot be included together: a
// template over the API's struct.

#include "src/transport/transport.hpp"

namespace transport {

template <class SctpStatus>
void apply_status(AssocInfo& info, const SctpStatus& status) {
  info.srtt_ms = status.sstat_primary.spinfo_srtt;
  info.window.cwnd = status.sstat_primary.spinfo_cwnd;
  info.window.rto_ms = status.sstat_primary.spinfo_rto;
  info.window.peer_rwnd = status.sstat_rwnd;
  info.window.flight_chunks = status.sstat_unackdata;
  info.window.undelivered_chunks = status.sstat_penddata;
}

}  // namespace transport
