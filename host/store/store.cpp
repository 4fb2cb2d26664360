#include "config/config.hpp"
#include "store/state_store.hpp"

namespace mcph::store {

std::unique_ptr<StateStore> make_postgres_store(const config::StoreConfig& cfg);  // postgres.cpp

Result<std::unique_ptr<StateStore>> StateStore::open(const config::StoreConfig& cfg, const std::string& state_dir) {
  if (cfg.backend == "postgresql") return make_postgres_store(cfg);
  return open(state_dir);
}

std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xFF) upper.pop_back();
  if (upper.empty()) return std::nullopt;
  upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
  return upper;
}

}  // namespace mcph::store
