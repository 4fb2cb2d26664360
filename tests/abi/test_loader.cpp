// The plugin loader and registry against real libraries: the examples load; broken
// plugins are refused with messages that say what is wrong and where.
#include <fstream>

#include "host_fixture.hpp"
#include "plugins/library.hpp"

namespace mcph::plugins {
namespace {

using testing::HostFixture;
const std::vector<std::string> kDirs = {MCPH_PLUGIN_DIR};

TEST(Loader, BothExamplesLoadWithTheirDescriptors) {
  auto echo = Library::load("example-echo", kDirs);
  ASSERT_TRUE(echo) << echo.error();
  EXPECT_EQ((*echo)->name(), "example-echo");
  EXPECT_EQ((*echo)->descriptor().abi_major, MCPH_ABI_MAJOR);
  EXPECT_EQ((*echo)->descriptor().struct_size, sizeof(mcph_plugin_descriptor));
  auto counter = Library::load(std::string(MCPH_PLUGIN_DIR) + "/libexample-counter.so", {});
  ASSERT_TRUE(counter) << counter.error();
  EXPECT_EQ((*counter)->name(), "example-counter");
  // The same file is loaded once and shared.
  auto again = Library::load("example-echo", kDirs);
  EXPECT_EQ(again->get(), echo->get());
}

TEST(Loader, WrongMajorIsRefusedNamingBothVersionsAndTheFile) {
  auto lib = Library::load("test-bad-major", kDirs);
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.error().find("libtest-bad-major.so"), std::string::npos) << lib.error();
  EXPECT_NE(lib.error().find("ABI 2.3"), std::string::npos) << lib.error();
  EXPECT_NE(lib.error().find("ABI " + std::to_string(MCPH_ABI_MAJOR) + "." + std::to_string(MCPH_ABI_MINOR)), std::string::npos) << lib.error();
}

TEST(Loader, MissingEntrySymbolIsRefused) {
  auto lib = Library::load("test-no-entry", kDirs);
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.error().find("not an mcp-host plugin"), std::string::npos) << lib.error();
  EXPECT_NE(lib.error().find("mcph_plugin_entry"), std::string::npos) << lib.error();
}

TEST(Loader, NotFoundListsEveryPathTried) {
  auto lib = Library::load("nosuch", {"/opt/a", "/opt/b"});
  ASSERT_FALSE(lib);
  for (const char* p : {"/opt/a/libnosuch.so", "/opt/a/nosuch.so", "/opt/b/libnosuch.so", "/opt/b/nosuch.so"}) {
    EXPECT_NE(lib.error().find(p), std::string::npos) << lib.error();
  }
}

TEST(Loader, NotASharedLibraryIsRefused) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "libfake.so") << "not an ELF file";
  auto lib = Library::load((dir.path() / "libfake.so").string(), {});
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.error().find("cannot load plugin library"), std::string::npos) << lib.error();
}

TEST(Registry, DuplicateToolInOnePluginIsALoadError) {
  HostFixture host;
  std::string err = host.load("  - name: dup\n    library: test-duplicate-tool\n");
  EXPECT_NE(err.find("'twice' is registered twice"), std::string::npos) << err;
  EXPECT_NE(err.find("'dup'"), std::string::npos) << err;
}

TEST(Registry, CollisionBetweenInstancesNamesBothOwners) {
  HostFixture host;
  std::string err = host.load("  - name: one\n    library: example-echo\n  - name: two\n    library: example-echo\n");
  EXPECT_NE(err.find("'echo' is registered by both instance 'one'"), std::string::npos) << err;
  EXPECT_NE(err.find("instance 'two'"), std::string::npos) << err;
  EXPECT_NE(err.find("tool_prefix"), std::string::npos) << err;
}

TEST(Registry, PrefixAllowAndDeny) {
  HostFixture host;
  ASSERT_EQ(host.load("  - name: one\n    library: example-echo\n"
                      "  - name: two\n    library: example-echo\n    tool_prefix: two_\n    tools: { deny: [add] }\n"
                      "  - name: off\n    library: test-bad-major\n    enabled: false\n"),
            "");
  std::vector<std::string> names;
  for (const auto& t : host.registry->tools()) names.push_back(t.public_name);
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "add", "two_echo"}));
  EXPECT_EQ(host.registry->find("two_echo")->instance->name(), "two");
  EXPECT_EQ(host.registry->find("two_add"), nullptr);

  HostFixture allow;
  ASSERT_EQ(allow.load("  - name: one\n    library: example-echo\n    tools: { allow: [add] }\n"), "");
  ASSERT_EQ(allow.registry->tools().size(), 1u);
  EXPECT_EQ(allow.registry->tools()[0].public_name, "add");

  HostFixture typo;
  std::string err = typo.load("  - name: one\n    library: example-echo\n    tools: { allow: [ech] }\n");
  EXPECT_NE(err.find("'ech'"), std::string::npos) << err;
}

TEST(Registry, CreateFailureIsReported) {
  HostFixture host;
  std::string err = host.load("  - name: svc\n    library: test-services\n    settings: { fail_create: true }\n");
  EXPECT_NE(err.find("plugin instance 'svc'"), std::string::npos) << err;
  EXPECT_NE(err.find("settings.fail_create is set"), std::string::npos) << err;
}

}  // namespace
}  // namespace mcph::plugins
