// The harness's scripted HTTP (mcp_plugin/testing.hpp, FakeHttp) seen from a plugin: what
// tests/plugins/test_harness.cpp does not cover yet. Route matching on method and URL,
// reply headers, recorded request headers and bodies, transport failures, and a delayed
// request that a cancel ends early. Only the header, as a plugin author uses it.
#include <gtest/gtest.h>

#include <thread>

#include "mcp_plugin/testing.hpp"

namespace {

using mcph::testing::FakeHost;
using mcph::testing::HttpReply;
using mcph::testing::Plugin;
using json = nlohmann::json;

const std::string kProbe = std::string(MCPH_PLUGIN_DIR) + "/libtest-http-probe.so";

json request(Plugin& p, const std::string& method, const std::string& url, json extra = json::object(),
             mcph::testing::CallOptions options = {}) {
  extra["method"] = method;
  extra["url"] = url;
  auto r = p.call("request", extra, options);
  EXPECT_FALSE(r.is_error()) << r.text();
  return r.structured();
}

TEST(HarnessHttp, RoutesMatchMethodAndUrl) {
  FakeHost host;
  host.http.on("POST", "https://api.test/items", HttpReply{201, {}, "created"});
  host.http.on("GET", "https://api.test/items/*", HttpReply{200, {}, "one item"});
  auto p = Plugin::load(kProbe, host);

  EXPECT_EQ(request(p, "POST", "https://api.test/items")["code"], 201);
  json wrong_method = request(p, "GET", "https://api.test/items");
  EXPECT_EQ(wrong_method["status"], MCPH_ERR_UNAVAILABLE);
  EXPECT_NE(wrong_method["error"].get<std::string>().find("no route for GET https://api.test/items"), std::string::npos);
  EXPECT_EQ(request(p, "GET", "https://api.test/items/7")["body"], "one item");  // prefix route
  EXPECT_EQ(request(p, "GET", "https://api.test/other")["status"], MCPH_ERR_UNAVAILABLE);
  EXPECT_EQ(request(p, "DELETE", "https://api.test/items/7")["status"], MCPH_ERR_UNAVAILABLE);
  EXPECT_EQ(host.http.requests().size(), 5u);  // unmatched requests are recorded too
}

TEST(HarnessHttp, ReplyHeadersReachThePluginAndRequestsAreRecorded) {
  FakeHost host;
  host.http.on("PUT", "https://api.test/doc", HttpReply{200, {{"ETag", "\"v2\""}, {"X-Rate-Remaining", "9"}}, "{}"});
  auto p = Plugin::load(kProbe, host);
  json r = request(p, "PUT", "https://api.test/doc",
                   {{"body", R"({"a":1})"}, {"headers", {{"If-Match", "\"v1\""}, {"Content-Type", "application/json"}}}});
  EXPECT_EQ(r["status"], MCPH_OK);
  EXPECT_EQ(r["headers"]["ETag"], "\"v2\"");
  EXPECT_EQ(r["headers"]["X-Rate-Remaining"], "9");

  auto reqs = host.http.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].body, R"({"a":1})");
  EXPECT_EQ(reqs[0].header("if-match"), "\"v1\"");  // case-insensitive lookup
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  EXPECT_FALSE(reqs[0].header("Authorization").has_value());
  host.http.clear();
  EXPECT_TRUE(host.http.requests().empty());
  EXPECT_EQ(request(p, "PUT", "https://api.test/doc")["status"], MCPH_ERR_UNAVAILABLE);  // routes cleared too
}

TEST(HarnessHttp, AFailureReplyIsATransportError) {
  FakeHost host;
  host.http.on("GET", "https://down.test/", HttpReply::fail(MCPH_ERR_DEADLINE_EXCEEDED, "timed out after 30 s"));
  auto p = Plugin::load(kProbe, host);
  json r = request(p, "GET", "https://down.test/");
  EXPECT_EQ(r["status"], MCPH_ERR_DEADLINE_EXCEEDED);
  EXPECT_EQ(r["code"], 0);
  EXPECT_EQ(r["error"], "timed out after 30 s");
}

TEST(HarnessHttp, ChunksJoinForAPlainRequest) {
  FakeHost host;
  HttpReply reply{200, {}, ""};
  reply.chunks = {"data: a\n\n", "data: b\n\n"};
  host.http.on("GET", "https://api.test/events", reply);
  auto p = Plugin::load(kProbe, host);
  EXPECT_EQ(request(p, "GET", "https://api.test/events")["body"], "data: a\n\ndata: b\n\n");
}

TEST(HarnessHttp, ACancelEndsADelayedRequestEarly) {
  FakeHost host;
  HttpReply slow{200, {}, "too late"};
  slow.delay = std::chrono::seconds(30);
  host.http.on("GET", "https://slow.test/", slow);
  auto p = Plugin::load(kProbe, host);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  json r = request(p, "GET", "https://slow.test/", json::object(), {&cancel});
  canceller.join();
  EXPECT_EQ(r["status"], MCPH_ERR_CANCELLED);
  EXPECT_EQ(r["body"], "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

}  // namespace
