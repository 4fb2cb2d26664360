// A real PostgreSQL 15 server for tests (Debian's postgresql-15, scripts/setup.sh): initdb
// into a temporary folder, started on a free loopback port, stopped by PID. PostgreSQL
// refuses to run as root, so as root the server runs as the `postgres` user (the
// package's), switched to in the forked child before exec, like `runuser -u postgres`.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace mcph::testing {

class PostgresServer {
 public:
  // Initialises a cluster and starts it; throws with the reason when it cannot.
  PostgresServer() {
    namespace fs = std::filesystem;
    bin_ = find_bin();
    std::string tmpl = (fs::temp_directory_path() / "mcph-pg.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("no 'postgres' user (install postgresql-15: scripts/setup.sh)");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (::chown(root_.c_str(), uid_, gid_) != 0) throw std::runtime_error("chown " + root_);
    }
    const std::string data = root_ + "/data";
    if (run({bin_ + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"}) != 0) {
      throw std::runtime_error("initdb failed (see the test log)");
    }
    start();
  }
  ~PostgresServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // A database URL for `db` (created on first ask), with a password that trust ignores:
  // the host must never show it.
  std::string url(const std::string& db = "postgres") {
    if (db != "postgres" && !created_.count(db)) {
      admin("CREATE DATABASE " + db);
      created_.insert(db);
    }
    return "postgresql://postgres:s3cret-pw@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

  // Runs SQL as the superuser (throws on failure).
  void admin(const std::string& sql) {
    PGconn* c = PQconnectdb(("postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres").c_str());
    PGresult* r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql.c_str()) : nullptr;
    const bool ok = r != nullptr && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    const std::string why = PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error(sql + ": " + why);
  }

  // Starts the server (again, after stop(): same data, same port when it is still free).
  void start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (port_ == 0 || attempt > 0) port_ = free_port();
      pid_ = spawn({bin_ + "/postgres", "-D", root_ + "/data", "-p", std::to_string(port_), "-k", root_, "-c",
                    "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300", "-c",
                    "shared_buffers=16MB", "-c", "logging_collector=off", "-c", "log_min_messages=fatal"});
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      const std::string ping = "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
      while (std::chrono::steady_clock::now() < deadline) {
        if (PQping(ping.c_str()) == PQPING_OK) return;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) break;  // did not start (port taken?)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      stop();
    }
    throw std::runtime_error("PostgreSQL did not start");
  }

  // Stops the server (fast shutdown: connections are cut), waiting for it to exit.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

 private:
  static std::string find_bin() {
    for (const char* dir : {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}) {
      if (::access((std::string(dir) + "/postgres").c_str(), X_OK) == 0) return dir;
    }
    throw std::runtime_error("PostgreSQL server binaries not found (install postgresql-15: scripts/setup.sh)");
  }

  pid_t spawn(const std::vector<std::string>& argv) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      if (uid_ != 0 && (::setgid(gid_) != 0 || ::setuid(uid_) != 0)) ::_exit(126);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // after setuid, which clears it: never outlive the test
      const int null_fd = ::open("/dev/null", O_RDWR);
      // Its output goes to a log beside the data, never into the test's pipe (which ctest
      // reads until every writer is gone).
      const int log = ::open((root_ + "/server.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(null_fd, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return pid;
  }

  int run(const std::vector<std::string>& argv) {
    const pid_t pid = spawn(argv);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

  std::string bin_;
  std::string root_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
  std::set<std::string> created_;
};

}  // namespace mcph::testing
