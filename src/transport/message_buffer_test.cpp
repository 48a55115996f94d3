#include "src/transport/message_buffer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <vector>

using transport::MessageBuffer;
using Part = MessageBuffer::Part;

namespace {

// "Reads" bytes into the buffer's room, as a socket would (at most what fits).
Part read(MessageBuffer& buf, const std::vector<std::uint8_t>& bytes, bool end) {
  std::span<std::uint8_t> room = buf.room();
  REQUIRE(bytes.size() <= room.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  return buf.add(bytes.size(), end);
}

}  // namespace

TEST_CASE("message buffer: a message in one read, and one in parts") {
  MessageBuffer buf;
  CHECK(read(buf, {1, 2, 3}, true) == Part::whole);
  CHECK(std::vector<std::uint8_t>(buf.msg().data().begin(), buf.msg().data().end()) ==
        std::vector<std::uint8_t>{1, 2, 3});
  buf.clear();
  CHECK(buf.msg().empty());
  CHECK(read(buf, {4, 5}, false) == Part::more);
  CHECK(read(buf, {6}, false) == Part::more);
  CHECK(read(buf, {7}, true) == Part::whole);
  CHECK(std::vector<std::uint8_t>(buf.msg().data().begin(), buf.msg().data().end()) ==
        std::vector<std::uint8_t>{4, 5, 6, 7});
  CHECK(buf.msg().headroom() == tun::PacketBuf::kHeadroom);  // room in front for headers
}

TEST_CASE("message buffer: a message larger than the buffer is dropped whole") {
  MessageBuffer buf;
  std::size_t room = buf.room().size();
  std::vector<std::uint8_t> fill(room, 0xab);
  CHECK(read(buf, fill, false) == Part::more);  // full and not ended: discarding from here
  CHECK(buf.msg().empty());
  CHECK(read(buf, {1, 2, 3}, false) == Part::more);
  CHECK(read(buf, {4}, true) == Part::dropped);
  buf.clear();
  // The next message is whole again.
  CHECK(read(buf, {9}, true) == Part::whole);
  CHECK(buf.msg().size() == 1);
}

TEST_CASE("message buffer: a message that exactly fills the buffer is kept") {
  MessageBuffer buf;
  std::vector<std::uint8_t> fill(buf.room().size(), 0x5a);
  CHECK(read(buf, fill, true) == Part::whole);
  CHECK(buf.msg().size() == fill.size());
  buf.clear();
  CHECK(buf.room().size() == fill.size());
}
