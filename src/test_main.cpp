// The doctest runner for every *_test.cpp. Daemon logs are quiet unless SCTPTUND_TEST_LOG is set.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include "src/base/log.hpp"

int main(int argc, char** argv) {
  if (!std::getenv("SCTPTUND_TEST_LOG")) base::log::set_level(base::log::Level::error);
  doctest::Context context(argc, argv);
  return context.run();
}
