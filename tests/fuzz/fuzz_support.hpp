// Shared by the fuzz targets: a private temporary folder per target and process.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace mcph::fuzz {

inline std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("mcph-fuzz-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

[[noreturn]] inline void die(const std::string& why) {
  std::fprintf(stderr, "fuzz setup failed: %s\n", why.c_str());
  std::abort();
}

}  // namespace mcph::fuzz
