#pragma once
// The state behind KernelTransport, shared by its files: kernel_transport.cpp (associations,
// messages, notifications) and kernel_socket.cpp (a slot's socket: its options, bind, listen).
// Internal: included by those only.

#include <netinet/in.h>
#include <netinet/sctp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "src/base/endpoint.hpp"
#include "src/base/event_loop.hpp"
#include "src/transport/assoc_link.hpp"
#include "src/transport/kernel/kernel_transport.hpp"
#include "src/transport/message_buffer.hpp"

namespace transport::kernel {

struct KernelTransport::SlotSocket {
  std::size_t slot = 0;
  int fd = -1;
  std::unique_ptr<base::IoWatcher> reader, writer;
  MessageBuffer rx;  // the message being received; a one-to-many socket does not interleave
  std::map<sctp_assoc_t, Link*> by_kassoc;  // this socket's associations (the kernel's ids)
  ~SlotSocket() {
    reader.reset();
    writer.reset();
    if (fd >= 0) close(fd);
  }
};

// A slot of the pool (assoc_link.hpp) with the kernel's id of its association.
struct KernelTransport::Link : AssocLink {
  sctp_assoc_t kassoc = 0;  // the kernel's id while connecting or ready; 0: none
  std::unique_ptr<base::Timer> reconnect_timer;
  std::uint64_t path_changes = 0;
};

namespace detail {

// Addresses packed back to back for sctp_bindx and sctp_connectx (kernel_socket.cpp).
std::vector<std::uint8_t> pack(const std::vector<base::Endpoint>& endpoints, std::uint16_t port);

}  // namespace detail
}  // namespace transport::kernel
