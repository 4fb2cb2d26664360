// Registry::reload: which instances a new configuration keeps, replaces, adds and removes,
// a library replaced on disk (loaded anew, not the old code under the same path), and the
// leases of a replacement and of the instance it replaces.
#include <filesystem>

#include <gtest/gtest.h>

#include "host_fixture.hpp"
#include "plugins/registry.hpp"

namespace mcph::testing {
namespace {

namespace fs = std::filesystem;
using Names = std::vector<std::string>;

const std::string kEcho = "  - name: echo\n    library: example-echo\n";
const std::string kFixtures = "  - name: fix\n    library: conformance-fixtures\n    tool_prefix: fx_\n";

class RegistryReload : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(f.load(kEcho + kFixtures), ""); }
  // The registry `plugins` describes, made from the fixture's.
  std::unique_ptr<plugins::Registry> next(const std::string& plugins, plugins::Registry::Changes& changes, int generation = 1) {
    auto cfg = config::load_string(config_yaml(f.dir.str() + "/state", plugins), f.dir.str());
    EXPECT_TRUE(cfg) << cfg.error();
    plugins::Services services{f.state.get(), f.http.get(), nullptr, nullptr, generation};
    auto r = f.registry->reload(**cfg, services, changes);
    EXPECT_TRUE(r) << r.error();
    return r ? std::move(*r) : nullptr;
  }
  static bool has_tool(const plugins::Registry& r, const std::string& name) { return r.find(name) != nullptr; }

  HostFixture f;
};

TEST_F(RegistryReload, KeepsWhatIsUnchangedAndReplacesWhatChanged) {
  plugins::Registry::Changes same;
  auto again = next(kEcho + kFixtures, same);
  ASSERT_TRUE(again);
  EXPECT_FALSE(same.any());
  EXPECT_EQ(same.unchanged, (Names{"echo", "fix"}));
  EXPECT_EQ(again->instance("echo"), f.registry->instance("echo"));  // the very same instance
  // Moving an entry down the file (another line) is no change either.
  plugins::Registry::Changes moved;
  next("\n\n" + kEcho + kFixtures, moved);
  EXPECT_FALSE(moved.any());

  plugins::Registry::Changes changes;
  auto changed = next(kEcho + "  - name: fix\n    library: conformance-fixtures\n    tool_prefix: fy_\n"
                              "  - name: counter\n    library: example-counter\n",
                      changes);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changes.unchanged, Names{"echo"});
  EXPECT_EQ(changes.replaced, Names{"fix"});
  EXPECT_EQ(changes.added, Names{"counter"});
  EXPECT_TRUE(changes.removed.empty());
  EXPECT_EQ(changed->instance("echo"), f.registry->instance("echo"));
  EXPECT_NE(changed->instance("fix"), f.registry->instance("fix"));
  EXPECT_TRUE(has_tool(*changed, "fy_greet"));
  EXPECT_FALSE(has_tool(*changed, "fx_greet"));
  EXPECT_TRUE(has_tool(*f.registry, "fx_greet"));  // the old registry is untouched

  plugins::Registry::Changes removed;
  auto less = next(kEcho, removed);
  EXPECT_EQ(removed.removed, Names{"fix"});
  EXPECT_EQ(less->instances().size(), 1u);
  // Dropping the new registries ends only what they alone held: the fixture's still serve.
  changed.reset();
  less.reset();
  EXPECT_FALSE(f.registry->instance("echo")->shutting_down());
  EXPECT_FALSE(f.registry->instance("fix")->shutting_down());
}

TEST_F(RegistryReload, AFailedReloadLeavesEverythingAsItWas) {
  plugins::Registry::Changes changes;
  auto cfg = config::load_string(config_yaml(f.dir.str() + "/state", kEcho + "  - name: bad\n    library: test-bad-major\n"), f.dir.str());
  ASSERT_TRUE(cfg);
  auto r = f.registry->reload(**cfg, plugins::Services{f.state.get(), f.http.get()}, changes);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("was built for plugin ABI"), std::string::npos) << r.error();
  EXPECT_FALSE(f.registry->instance("echo")->shutting_down());
}

TEST_F(RegistryReload, ALibraryReplacedOnDiskIsLoadedAnew) {
  const fs::path lib = fs::path(f.dir.str()) / "libswap.so";
  fs::copy_file(fs::path(MCPH_PLUGIN_DIR) / "libexample-echo.so", lib);
  const std::string entry = "  - name: swap\n    library: " + lib.string() + "\n";
  plugins::Registry::Changes first;
  auto before = next(entry, first);
  ASSERT_TRUE(before);
  ASSERT_TRUE(has_tool(*before, "echo"));
  // Installed anew under the same path (a new file renamed over it, as `install` does).
  fs::copy_file(fs::path(MCPH_PLUGIN_DIR) / "libexample-counter.so", lib.string() + ".new");
  fs::rename(lib.string() + ".new", lib);
  auto cfg = config::load_string(config_yaml(f.dir.str() + "/state", entry), f.dir.str());
  plugins::Registry::Changes changes;
  auto after = before->reload(**cfg, plugins::Services{f.state.get(), f.http.get(), nullptr, nullptr, 2}, changes);
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(changes.replaced, Names{"swap"});
  EXPECT_TRUE(has_tool(**after, "slow_count")) << "the old library's code was loaded again";
  EXPECT_FALSE(has_tool(**after, "echo"));
  EXPECT_TRUE(has_tool(*before, "echo"));  // the old instance keeps its own code while it drains
}

TEST_F(RegistryReload, AReplacementLeadsOnlyOnceTheInstanceItReplacesLetsGo) {
  plugins::Registry::Changes changes;
  auto next_registry = next(kEcho + "  - name: fix\n    library: conformance-fixtures\n    tool_prefix: fz_\n", changes, 7);
  ASSERT_TRUE(next_registry);
  auto& old_host = const_cast<mcph_host_instance&>(f.registry->instance("fix")->host_instance());
  auto& new_host = const_cast<mcph_host_instance&>(next_registry->instance("fix")->host_instance());
  EXPECT_EQ(new_host.lease_owner(), old_host.lease_owner() + "@7");
  const auto& api = plugins::host_api();
  const mcph_str name{"poller", 6};
  ASSERT_EQ(api.lease_acquire(&old_host, name, 60000), MCPH_OK);
  EXPECT_EQ(api.lease_acquire(&new_host, name, 60000), MCPH_ERR_FAILED_PRECONDITION);  // the old one leads
  const_cast<plugins::Instance*>(f.registry->instance("fix"))->retire();
  EXPECT_EQ(api.lease_acquire(&old_host, name, 60000), MCPH_ERR_FAILED_PRECONDITION);  // retired: no renewal
  ASSERT_EQ(api.lease_release(&old_host, name), MCPH_OK);
  EXPECT_EQ(api.lease_acquire(&new_host, name, 60000), MCPH_OK);
}

}  // namespace
}  // namespace mcph::testing
