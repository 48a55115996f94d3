#pragma once
// Reading a pre-shared key file ([[peer]] key_file): opened without following a symbolic link (a
// link put in its place could point at any file root can read), then checked on the open
// descriptor, so nothing can be swapped in between: a regular file, owned by the daemon's user or
// root, closed to group and others, at most 4 KiB, holding a key crypto::parse_key accepts. Every
// copy of the key's text is wiped before returning.

#include <optional>
#include <string>

#include "src/crypto/key.hpp"

namespace control {

// The key, or nullopt with error set to a message that names the file and says what to do.
std::optional<crypto::Key> read_key_file(const std::string& path, std::string& error);

}  // namespace control
