// libpq, loaded when a PostgreSQL store is opened rather than when mcp-host starts.
//
// libpq brings about twenty shared libraries (Kerberos, LDAP, SASL, GnuTLS, p11-kit...)
// that a host on SQLite never uses; mapping and relocating them was most of the host's
// start-up (perf, `mcp-host --version`: 38 libraries, 38 % of its time in the dynamic
// loader and 45 % in the kernel mapping them). So the host is not linked with libpq:
// this file defines the libpq functions the store calls (postgres.cpp, and the tests'
// helper), each checked against libpq-fe.h's own declaration, and each forwards to the
// real one in libpq.so.5, opened the first time (load_libpq() from StateStore::open, which
// turns a missing libpq into a clear error).
#include "store/libpq.hpp"

#include <dlfcn.h>
#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace mcph::store {
namespace {

// One pointer per function used, named as in libpq.
#define MCPH_LIBPQ_FUNCTIONS(X)                                                                       \
  X(PQconnectdb) X(PQconnectdbParams) X(PQfinish) X(PQstatus) X(PQtransactionStatus) X(PQerrorMessage) \
  X(PQsocket) X(PQsetNoticeProcessor) X(PQexec) X(PQexecParams) X(PQprepare) X(PQexecPrepared)        \
  X(PQconsumeInput) X(PQnotifies) X(PQresultStatus) X(PQresultErrorMessage) X(PQntuples)               \
  X(PQgetvalue) X(PQgetlength) X(PQcmdTuples) X(PQclear) X(PQfreemem) X(PQconninfoParse)               \
  X(PQconninfoFree) X(PQping)

struct Api {
#define MCPH_POINTER(name) decltype(&::name) name = nullptr;
  MCPH_LIBPQ_FUNCTIONS(MCPH_POINTER)
#undef MCPH_POINTER
  std::string error;  // why it could not be loaded; empty when it was
};

const Api& api() {
  static const Api loaded = [] {
    Api a;
    void* lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);  // kept open for the process's life
    if (lib == nullptr) {
      const char* why = dlerror();
      a.error = "the PostgreSQL store needs libpq (Debian: libpq5), which could not be loaded: " +
                std::string(why != nullptr ? why : "unknown error");
      return a;
    }
#define MCPH_LOOKUP(name)                                                                        \
  a.name = reinterpret_cast<decltype(a.name)>(dlsym(lib, #name));                                \
  if (a.name == nullptr && a.error.empty()) a.error = "libpq.so.5 has no " #name " (libpq too old?)";
    MCPH_LIBPQ_FUNCTIONS(MCPH_LOOKUP)
#undef MCPH_LOOKUP
    return a;
  }();
  return loaded;
}

// For the forwarders: a store is opened only after load_libpq() succeeded, so this fails
// only for code that skipped it.
const Api& loaded() {
  const Api& a = api();
  if (!a.error.empty()) {
    std::fprintf(stderr, "mcp-host: %s\n", a.error.c_str());
    std::abort();
  }
  return a;
}

}  // namespace

std::string load_libpq() { return api().error; }

}  // namespace mcph::store

using mcph::store::loaded;

extern "C" {

PGconn* PQconnectdb(const char* conninfo) { return loaded().PQconnectdb(conninfo); }
PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values, int expand_dbname) {
  return loaded().PQconnectdbParams(keywords, values, expand_dbname);
}
void PQfinish(PGconn* conn) { loaded().PQfinish(conn); }
ConnStatusType PQstatus(const PGconn* conn) { return loaded().PQstatus(conn); }
PGTransactionStatusType PQtransactionStatus(const PGconn* conn) { return loaded().PQtransactionStatus(conn); }
char* PQerrorMessage(const PGconn* conn) { return loaded().PQerrorMessage(conn); }
int PQsocket(const PGconn* conn) { return loaded().PQsocket(conn); }
PQnoticeProcessor PQsetNoticeProcessor(PGconn* conn, PQnoticeProcessor proc, void* arg) {
  return loaded().PQsetNoticeProcessor(conn, proc, arg);
}
PGresult* PQexec(PGconn* conn, const char* query) { return loaded().PQexec(conn, query); }
PGresult* PQexecParams(PGconn* conn, const char* command, int nParams, const Oid* paramTypes, const char* const* paramValues,
                       const int* paramLengths, const int* paramFormats, int resultFormat) {
  return loaded().PQexecParams(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat);
}
PGresult* PQprepare(PGconn* conn, const char* stmtName, const char* query, int nParams, const Oid* paramTypes) {
  return loaded().PQprepare(conn, stmtName, query, nParams, paramTypes);
}
PGresult* PQexecPrepared(PGconn* conn, const char* stmtName, int nParams, const char* const* paramValues, const int* paramLengths,
                         const int* paramFormats, int resultFormat) {
  return loaded().PQexecPrepared(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}
int PQconsumeInput(PGconn* conn) { return loaded().PQconsumeInput(conn); }
PGnotify* PQnotifies(PGconn* conn) { return loaded().PQnotifies(conn); }
ExecStatusType PQresultStatus(const PGresult* res) { return loaded().PQresultStatus(res); }
char* PQresultErrorMessage(const PGresult* res) { return loaded().PQresultErrorMessage(res); }
int PQntuples(const PGresult* res) { return loaded().PQntuples(res); }
char* PQgetvalue(const PGresult* res, int tup_num, int field_num) { return loaded().PQgetvalue(res, tup_num, field_num); }
int PQgetlength(const PGresult* res, int tup_num, int field_num) { return loaded().PQgetlength(res, tup_num, field_num); }
char* PQcmdTuples(PGresult* res) { return loaded().PQcmdTuples(res); }
void PQclear(PGresult* res) { loaded().PQclear(res); }
void PQfreemem(void* ptr) { loaded().PQfreemem(ptr); }
PQconninfoOption* PQconninfoParse(const char* conninfo, char** errmsg) { return loaded().PQconninfoParse(conninfo, errmsg); }
void PQconninfoFree(PQconninfoOption* connOptions) { loaded().PQconninfoFree(connOptions); }
PGPing PQping(const char* conninfo) { return loaded().PQping(conninfo); }

}  // extern "C"
