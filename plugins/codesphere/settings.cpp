#include "settings.hpp"

#include <stdexcept>

namespace codesphere {

namespace {

milliseconds read_ms(const json& v, const std::string& key, std::int64_t min, std::int64_t max) {
  auto n = coerce_id(v);  // a non-negative integer, also from a quoted YAML value
  if (!n || *n < min || *n > max) {
    throw std::invalid_argument("codesphere settings: " + key + " must be an integer from " + std::to_string(min) +
                                " to " + std::to_string(max) + " (milliseconds)");
  }
  return milliseconds(*n);
}

}  // namespace

Settings Settings::parse(const json& settings) {
  Settings s;
  if (settings.is_null()) return s;
  if (!settings.is_object()) throw std::invalid_argument("codesphere settings must be a mapping");
  constexpr std::int64_t kDay = 24LL * 3600 * 1000;
  for (const auto& [key, v] : settings.items()) {
    if (key == "base_url") {
      if (!v.is_string()) throw std::invalid_argument("codesphere settings: base_url must be a string");
      std::string url = v.get<std::string>();
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        throw std::invalid_argument("codesphere settings: base_url must start with http:// or https://");
      }
      s.base_url = url;
    } else if (key == "team_id") {
      if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) continue;  // "${CS_TEAM_ID:-}"
      auto id = coerce_id(v);
      if (!id) throw std::invalid_argument("codesphere settings: team_id must be a team's numeric id");
      s.team_id = id;
    } else if (key == "request_timeout_ms") {
      s.request_timeout = read_ms(v, key, 100, 600000);
    } else if (key == "poll_interval_ms") {
      s.poll_interval = read_ms(v, key, 1, 600000);
    } else if (key == "prepare_timeout_ms") {
      s.prepare_timeout = read_ms(v, key, 1, kDay);
    } else if (key == "run_timeout_ms") {
      s.run_timeout = read_ms(v, key, 1, kDay);
    } else if (key == "create_timeout_ms") {
      s.create_timeout = read_ms(v, key, 1, kDay);
    } else if (key == "logs_timeout_ms") {
      s.logs_timeout = read_ms(v, key, 100, 600000);
    } else if (key == "max_retries") {
      auto n = coerce_id(v);
      if (!n || *n > 10) throw std::invalid_argument("codesphere settings: max_retries must be an integer from 0 to 10");
      s.max_retries = static_cast<int>(*n);
    } else if (key == "retry_backoff_ms") {
      s.retry_backoff = read_ms(v, key, 0, 60000);
    } else if (key == "max_retry_after_ms") {
      s.max_retry_after = read_ms(v, key, 0, 600000);
    } else {
      throw std::invalid_argument(
          "codesphere settings: unknown key '" + key +
          "' (known: base_url, team_id, request_timeout_ms, poll_interval_ms, prepare_timeout_ms, run_timeout_ms, "
          "create_timeout_ms, logs_timeout_ms, max_retries, retry_backoff_ms, max_retry_after_ms)");
    }
  }
  return s;
}

std::string Settings::ide_url(std::int64_t team, std::int64_t workspace) const {
  constexpr std::string_view kApi = "/api";
  if (base_url.size() < kApi.size() || base_url.compare(base_url.size() - kApi.size(), kApi.size(), kApi) != 0) {
    return {};
  }
  return base_url.substr(0, base_url.size() - kApi.size()) + "/ide/teams/" + std::to_string(team) + "/workspaces/" +
         std::to_string(workspace);
}

}  // namespace codesphere
