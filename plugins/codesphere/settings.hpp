// codesphere plugin: the instance's `settings` (documented in plugin.cpp's header comment).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "util.hpp"

namespace codesphere {

using std::chrono::milliseconds;

struct Settings {
  std::string base_url = "https://codesphere.com/api";  // no trailing slash
  std::optional<std::int64_t> team_id;
  milliseconds request_timeout{30000};
  milliseconds poll_interval{5000};
  milliseconds prepare_timeout{180000};
  milliseconds run_timeout{90000};
  milliseconds create_timeout{240000};
  milliseconds logs_timeout{10000};
  int max_retries = 3;
  milliseconds retry_backoff{500};
  milliseconds max_retry_after{60000};

  // Reads the settings object. Throws std::invalid_argument naming the key for unknown keys,
  // wrong types and out-of-range values: a typo in a timeout should fail loudly at load.
  static Settings parse(const json& settings);

  // The IDE link for a workspace (CSGO: the API URL with /api replaced by /ide, §2.11), or
  // "" when base_url does not end in /api.
  std::string ide_url(std::int64_t team_id, std::int64_t workspace_id) const;
};

}  // namespace codesphere
