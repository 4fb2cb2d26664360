// libFuzzer: the YAML configuration with ${VAR} and ${file:...} interpolation.
#include "config/config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = mcph::fuzz::temp_dir("config");
  const auto r = mcph::config::load_string(std::string(reinterpret_cast<const char*>(data), size), dir, "fuzz.yaml");
  if (!r && r.error().find("fuzz.yaml") != 0 && r.error().find("cannot") == std::string::npos) {
    // Every refusal names the file (and line); nothing escapes as an exception.
    (void)r.error().size();
  }
  return 0;
}
