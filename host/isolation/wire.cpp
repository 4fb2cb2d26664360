#include "isolation/wire.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "json/bounded.hpp"

namespace mcph::isolation {
namespace {

void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

constexpr size_t kHeader = 4 + 1 + 4 + 4;

// A frame's first kHeader bytes; `size` counts what follows the size field.
void put_header(char* header, size_t size, Msg type, uint32_t id, size_t head_size) {
  put_u32(header, static_cast<uint32_t>(size));
  header[4] = static_cast<char>(type);
  put_u32(header + 5, id);
  put_u32(header + 9, static_cast<uint32_t>(head_size));
}

}  // namespace

Channel::~Channel() {
  if (fd_ >= 0) ::close(fd_);
}

void Channel::shutdown() { ::shutdown(fd_, SHUT_RDWR); }

bool Channel::send(Msg type, uint32_t id, const nlohmann::json& head, std::string_view body, bool hold) {
  return send_written(type, id, head.is_null() ? std::string() : json_text::dump(head), body, hold);
}

bool Channel::send_written(Msg type, uint32_t id, std::string_view head_text, std::string_view body, bool hold) {
  const size_t size = kHeader - 4 + head_text.size() + body.size();
  if (size > kMaxFrameBytes) return false;
  char header[kHeader];
  put_header(header, size, type, id, head_text.size());
  std::lock_guard lock(write_mutex_);
  if (hold || !held_.empty()) {
    held_.append(header, kHeader).append(head_text).append(body);
    return true;
  }
  iovec iov[3] = {{header, kHeader},
                  {const_cast<char*>(head_text.data()), head_text.size()},
                  {const_cast<char*>(body.data()), body.size()}};
  size_t first = 0;
  while (first < 3) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = 3 - first;
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(n);
    while (first < 3 && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < 3) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

bool Channel::flush_held() {
  std::lock_guard lock(write_mutex_);
  if (held_.empty()) return true;
  const bool ok = write_all(held_);
  held_.clear();
  return ok;
}

bool Channel::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Channel::fill(size_t need) {
  if (pos_ == end_) pos_ = end_ = 0;
  while (end_ - pos_ < need) {
    if (pos_ > 0 && (pos_ * 2 >= end_ || cap_ - pos_ < need)) {  // move what is left to the front
      std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (cap_ < std::max<size_t>(64 * 1024, need)) {
      cap_ = std::max<size_t>(64 * 1024, need);
      std::unique_ptr<char[]> bigger(new char[cap_]);  // (uninitialised: recv fills it)
      if (end_ > 0) std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
    }
    const ssize_t n = ::recv(fd_, buf_.get() + end_, cap_ - end_, 0);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

bool Channel::readable_within(std::chrono::steady_clock::duration spin) const {
  if (buffered()) return true;
  if (spin <= std::chrono::steady_clock::duration::zero()) return false;
  pollfd p{fd_, POLLIN, 0};
  const auto until = std::chrono::steady_clock::now() + spin;
  do {
    if (::poll(&p, 1, 0) != 0) return true;
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

Status Channel::read(Frame& frame) {
  if (!fill(kHeader)) return Error{end_ == pos_ ? "closed" : "connection broken inside a frame"};
  const char* h = buf_.get() + pos_;
  const size_t size = get_u32(h);
  const uint32_t head_size = get_u32(h + 9);
  if (size < kHeader - 4 || size > kMaxFrameBytes || head_size > size - (kHeader - 4)) {
    return Error{"malformed frame (size " + std::to_string(size) + ")"};
  }
  frame.type = static_cast<Msg>(static_cast<unsigned char>(h[4]));
  frame.id = get_u32(h + 5);
  if (!fill(4 + size)) return Error{"connection broken inside a frame"};
  const char* p = buf_.get() + pos_ + kHeader;
  const size_t body_size = size - (kHeader - 4) - head_size;
  frame.head = nullptr;
  frame.head_text.clear();
  if (frame.type == Msg::kCall) {
    frame.head_text.assign(p, head_size);
  } else if (head_size > 0) {
    auto parsed = json_text::parse(std::string_view(p, head_size));
    if (!parsed) return Error{"malformed frame head"};
    frame.head = std::move(*parsed);
  }
  frame.body.assign(p + head_size, body_size);
  pos_ += 4 + size;
  return Ok{};
}

void append_pair(std::string& body, std::string_view key, std::string_view value) {
  for (std::string_view part : {key, value}) {
    char n[4];
    put_u32(n, static_cast<uint32_t>(part.size()));
    body.append(n, 4);
    body.append(part);
  }
}

void read_pairs(std::string_view body, const std::function<bool(std::string_view, std::string_view)>& each) {
  auto take = [&](std::string_view& out) {
    if (body.size() < 4 || body.size() - 4 < get_u32(body.data())) return false;
    out = body.substr(4, get_u32(body.data()));
    body.remove_prefix(4 + out.size());
    return true;
  };
  std::string_view k, v;
  while (take(k) && take(v)) {
    if (!each(k, v)) return;
  }
}

using nlohmann::json;

json registration_to_json(const mcph_host_instance& hi) {
  json tools = json::array(), resources = json::array(), prompts = json::array(), users = json::array();
  for (const auto& t : hi.tools) {
    tools.push_back({{"name", t.name}, {"title", t.title}, {"description", t.description}, {"input_schema", t.input_schema},
                     {"output_schema", t.output_schema}, {"annotations", t.annotations},
                     {"task_support", static_cast<int>(t.task_support)}});
  }
  for (const auto& r : hi.resources) {
    resources.push_back({{"uri", r.uri}, {"uri_template", r.uri_template}, {"name", r.name}, {"title", r.title},
                         {"description", r.description}, {"mime_type", r.mime_type}, {"annotations", r.annotations},
                         {"completes", r.completes}, {"literals", r.literals}, {"variables", r.variables}});
  }
  for (const auto& p : hi.prompts) {
    prompts.push_back({{"name", p.name}, {"title", p.title}, {"description", p.description}, {"arguments", p.arguments},
                       {"completes", p.completes}});
  }
  for (const auto& u : hi.user_credentials) users.push_back({{"key", u.key}, {"label", u.label}, {"help", u.help}, {"secret", u.secret}});
  return {{"tools", tools}, {"resources", resources}, {"prompts", prompts}, {"user_credentials", users},
          {"credential_check", hi.has_credential_check}, {"public_credentials", hi.public_credentials}};
}

Status registration_from_json(const json& j, mcph_host_instance& hi) {
  try {
    for (const auto& t : j.at("tools")) {
      plugins::Tool tool;
      tool.name = t.at("name");
      tool.title = t.at("title");
      tool.description = t.at("description");
      tool.input_schema = t.at("input_schema");
      tool.output_schema = t.at("output_schema");
      tool.annotations = t.at("annotations");
      tool.task_support = static_cast<plugins::TaskSupport>(std::clamp(t.value("task_support", 0), 0, 3));
      hi.tools.push_back(std::move(tool));
    }
    for (const auto& r : j.at("resources")) {
      plugins::Resource res;
      res.uri = r.at("uri");
      res.uri_template = r.at("uri_template");
      res.name = r.at("name");
      res.title = r.at("title");
      res.description = r.at("description");
      res.mime_type = r.at("mime_type");
      res.annotations = r.at("annotations");
      res.completes = r.at("completes");
      res.literals = r.at("literals").get<std::vector<std::string>>();
      res.variables = r.at("variables").get<std::vector<std::string>>();
      if (!res.literals.empty() && res.literals.size() != res.variables.size() + 1) return Error{"malformed resource template"};
      hi.resources.push_back(std::move(res));
    }
    for (const auto& p : j.at("prompts")) {
      plugins::Prompt prompt;
      prompt.name = p.at("name");
      prompt.title = p.at("title");
      prompt.description = p.at("description");
      prompt.arguments = p.at("arguments");
      prompt.completes = p.at("completes");
      hi.prompts.push_back(std::move(prompt));
    }
    for (const auto& u : j.at("user_credentials")) {
      hi.user_credentials.push_back({u.at("key"), u.at("label"), u.at("help"), u.at("secret")});
    }
    hi.has_credential_check = j.at("credential_check");
    hi.public_credentials = j.at("public_credentials").get<std::set<std::string>>();
  } catch (const json::exception& e) {
    return Error{std::string("malformed registration: ") + e.what()};
  }
  return Ok{};
}

}  // namespace mcph::isolation
