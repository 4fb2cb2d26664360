// libpq is loaded on first use, not linked (libpq.cpp says why).
#pragma once

#include <string>

namespace mcph::store {

// Loads libpq.so.5 if it is not yet loaded: "" when it is, else why not (for the user).
std::string load_libpq();

}  // namespace mcph::store
