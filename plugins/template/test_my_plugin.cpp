// Unit tests for my_plugin with the SDK's fake host (mcp_plugin/testing.hpp): the real
// library is loaded, its HTTP is scripted, nothing touches the network or a running host.
#include <gtest/gtest.h>

#include "mcp_plugin/testing.hpp"

namespace {

using mcph::testing::FakeHost;
using mcph::testing::HttpReply;
using mcph::testing::Plugin;

const nlohmann::json kSettings = {{"base_url", "https://api.test"}};

TEST(MyPlugin, GetsAnItemWithTheCallersToken) {
  FakeHost host;
  host.credentials["api_token"] = "tok-123";
  host.http.on("GET", "https://api.test/items/42", HttpReply{200, {}, R"({"id":"42","name":"Answer"})"});
  auto plugin = Plugin::load(MY_PLUGIN_LIBRARY, host, kSettings);

  ASSERT_EQ(plugin.tools().size(), 1u);
  EXPECT_EQ(plugin.tools()[0]["name"], "get_item");
  auto r = plugin.call("get_item", {{"id", "42"}});
  ASSERT_FALSE(r.is_error()) << r.text();
  EXPECT_EQ(r.structured(), (nlohmann::json{{"id", "42"}, {"name", "Answer"}}));
  ASSERT_EQ(host.http.requests().size(), 1u);
  EXPECT_EQ(host.http.requests()[0].header("Authorization"), "Bearer tok-123");
}

TEST(MyPlugin, SaysHowToSetAMissingToken) {
  FakeHost host;
  auto plugin = Plugin::load(MY_PLUGIN_LIBRARY, host, kSettings);
  auto r = plugin.call("get_item", {{"id", "42"}});
  EXPECT_TRUE(r.is_error());
  EXPECT_NE(r.text().find("credentials.api_token"), std::string::npos) << r.text();
  EXPECT_TRUE(host.http.requests().empty());
}

TEST(MyPlugin, ReportsUpstreamErrorsReadably) {
  FakeHost host;
  host.credentials["api_token"] = "tok-123";
  host.http.on("GET", "https://api.test/items/7", HttpReply{404, {}, "{}"});
  auto plugin = Plugin::load(MY_PLUGIN_LIBRARY, host, kSettings);
  auto r = plugin.call("get_item", {{"id", "7"}});
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.text(), "no item with id 7");
}

TEST(MyPlugin, RefusesABadBaseUrl) {
  FakeHost host;
  try {
    Plugin::load(MY_PLUGIN_LIBRARY, host, {{"base_url", "ftp://x"}});
    FAIL() << "created an instance with an ftp:// base_url";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("settings.base_url"), std::string::npos) << e.what();
  }
}

}  // namespace
