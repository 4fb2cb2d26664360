// parse_plain_request: which requests the listener serves without cpp-httplib's parser
// (Listener::route_directly), and what it reads from them. Anything it declines goes to
// cpp-httplib as before, so a decline is always safe; a request it takes must be read
// exactly as cpp-httplib would read it.
#include <gtest/gtest.h>

#include "transport/http_framer.hpp"

using mcph::transport::parse_plain_request;

namespace {

const std::string kBody = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";

std::string post(const std::string& headers, const std::string& body = kBody) {
  return "POST /mcp HTTP/1.1\r\nHost: localhost\r\n" + headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST(PlainRequest, ReadsTheRequestLineHeadersAndBody) {
  const std::string text = post("Content-Type:application/json\r\nMcp-Name: \t echo \t\r\n");  // (the views are into it)
  auto r = parse_plain_request(text);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->target, "/mcp");
  EXPECT_EQ(r->body, kBody);
  EXPECT_FALSE(r->close);
  ASSERT_EQ(r->headers.size(), 4u);
  EXPECT_EQ(r->headers[0].first, "Host");
  EXPECT_EQ(r->headers[1].second, "application/json");
  EXPECT_EQ(r->headers[2].second, "echo");  // trimmed of spaces and tabs
  EXPECT_EQ(r->headers[3].first, "Content-Length");
  // No body at all, and a body of zero bytes.
  auto empty = parse_plain_request("POST /mcp HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->body.empty());
  EXPECT_TRUE(parse_plain_request(post("", "")));
  // Connection: close, in any case.
  const std::string close_text = post("connection: Close\r\n");
  auto closing = parse_plain_request(close_text);
  ASSERT_TRUE(closing);
  EXPECT_TRUE(closing->close);
  const std::string twice = post("Connection: close\r\nConnection: keep-alive\r\n");  // a later one does not reopen it
  auto still_closing = parse_plain_request(twice);
  ASSERT_TRUE(still_closing);
  EXPECT_TRUE(still_closing->close);
  EXPECT_TRUE(parse_plain_request(post("content-length: 3\r\n", "")) == std::nullopt);  // (two lengths)
}

TEST(PlainRequest, DeclinesEveryOtherForm) {
  const std::vector<std::string> declined = {
      "POST /mcp HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",          // another version
      "post /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",          // a method not in capitals
      "POST  /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",         // two spaces
      "POST mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",           // not an origin-form target
      "POST /m\x01p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",       // a control character in it
      "POST /mcp HTTP/1.1\nHost: h\nContent-Length: 2\n\n{}",                   // bare LF line ends
      "POST /mcp HTTP/1.1\r\nHost: h\nX: y\r\nContent-Length: 2\r\n\r\n{}",   // one bare LF
      "POST /mcp HTTP/1.1\r\nHost h\r\nContent-Length: 2\r\n\r\n{}",            // a line without a colon
      "POST /mcp HTTP/1.1\r\nHo st: h\r\nContent-Length: 2\r\n\r\n{}",          // a name that is no token
      "POST /mcp HTTP/1.1\r\nHost: h\r\nX: a\rb\r\nContent-Length: 2\r\n\r\n{}",  // a CR inside a value
      "POST /mcp HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\nContent-Length: 2\r\n\r\n{}",  // DEL inside a value
      "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: +2\r\n\r\n{}",
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n{}",          // fewer bytes than it says
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n{}",          // more
      "POST /mcp HTTP/1.1\r\nHost: h\r\n\r\n{}",                                  // a body without a length
      "POST /mcp HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n{}",
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
      "\r\nPOST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",       // a leading empty line
      "POST /mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n",                 // no end of head
  };
  for (const std::string& text : declined) EXPECT_FALSE(parse_plain_request(text)) << text;
}
