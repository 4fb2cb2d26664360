/*
 * mcp_plugin/abi.h — the mcp-host plugin C ABI, version 1.4.
 *
 * 1.0: tools, and the host services (logging, progress, cancellation, credentials, state,
 *      outbound HTTP, JSON helpers).
 * 1.1: resources and resource templates, prompts, completions; input from the client
 *      (elicitation, sampling, roots) for tools, prompts and resources; resource updates;
 *      per-user credentials (what the HTTP sign-in form asks each user for).
 *      Appended only: every 1.0 plugin loads unchanged. Fields and functions added in 1.1
 *      are marked "(1.1)"; check host->abi_minor >= 1 before calling them.
 * 1.2: checking what a user typed on the sign-in form (register_credential_check), and a
 *      user's credentials outside a call, for work done on their behalf (user_credential).
 *      Check host->abi_minor >= 2 before calling them.
 * 1.3: which credentials are secret (declare_credential); compare-and-set on state
 *      (state_put_if) and leases (lease_acquire, lease_release), so that replicas sharing a
 *      store can split background work; MCP tasks: a tool's default task support
 *      (mcph_tool_def.task_support) and work that continues as a task after its handler
 *      returned (call_continue_as_task, task_update, task_get). Check MCPH_HOST_HAS(host,
 *      name) before calling them.
 * 1.4: tracing for work done outside a call: a call's trace context (call_trace_context)
 *      and a request's link to it (mcph_http_request.trace_link), so that a poller's
 *      requests show up beside the call that started the work.
 *
 * A plugin is a shared library that exports exactly one function, mcph_plugin_entry().
 * Everything else travels through the tables below. The header is pure C (C99), depends
 * only on the C standard library, and is compiled as C in the project's tests.
 *
 * Rules that hold everywhere (read them once):
 *
 *  - Names: every identifier starts with mcph_ / MCPH_.
 *  - Versions: MCPH_ABI_MAJOR changes only for incompatible changes; a host refuses a
 *    plugin built for another major. Minor growth only appends: every struct that crosses
 *    the boundary starts with `uint32_t struct_size`, fields are only ever added at the end,
 *    and the receiver copies min(struct_size, its own size) into a zeroed struct, so a field
 *    the sender does not know reads as zero/empty ("absent").
 *  - Strings: mcph_str is (pointer, length) UTF-8, not necessarily NUL-terminated when it
 *    comes from a plugin. Strings the host hands to a plugin are also NUL-terminated, as a
 *    convenience for C. JSON travels as JSON text in an mcph_str.
 *  - Ownership: everything the host passes in is BORROWED and valid only until the function
 *    it was passed to returns (or until the callback returns, for callbacks). Everything a
 *    plugin passes to the host is COPIED by the host before the host function returns. The
 *    host never frees plugin memory and a plugin never frees host memory. Data that the host
 *    returns to a plugin arrives through an mcph_sink callback: copy what you need inside it.
 *  - Errors: functions return an mcph_status (MCPH_OK = 0). No C++ exception may cross this
 *    boundary in either direction.
 *  - Threads: each function below states who may call it and from which thread.
 *      [any thread]   safe to call concurrently from any thread, including threads the
 *                     plugin started itself, between create() returning and destroy() returning.
 *      [create]       only from inside create(), on the thread that called it.
 *      [handler]      only from inside a tool handler, for the mcph_call it was given.
 *  - Lifetime: the host never unloads a library while any of its code may still run.
 *    destroy() is called after every handler of that instance has returned; when destroy()
 *    returns, the plugin must have stopped its own threads and may not call the host again
 *    with that mcph_host_instance.
 */
#ifndef MCP_PLUGIN_ABI_H
#define MCP_PLUGIN_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCPH_ABI_MAJOR 1
#define MCPH_ABI_MINOR 4

/* True when the host's services table has the function `field`: the host knows that minor
 * version. Works for every field, of every version: MCPH_HOST_HAS(host, user_credential). */
#define MCPH_HOST_HAS(host, field)                                                            \
  ((host) != NULL && (host)->struct_size >= offsetof(mcph_host_api, field) + sizeof((host)->field) && \
   (host)->field != NULL)

/* The one symbol a plugin exports. MCPH_PLUGIN_EXPORT gives it default visibility even
 * when the library is built with -fvisibility=hidden (which it should be). */
#define MCPH_ENTRY_SYMBOL "mcph_plugin_entry"
#if defined(_WIN32)
#define MCPH_PLUGIN_EXPORT __declspec(dllexport)
#else
#define MCPH_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------------------
 * Basic types
 * ------------------------------------------------------------------------------------- */

typedef int32_t mcph_status;
#define MCPH_OK 0
#define MCPH_ERR_INVALID_ARGUMENT 1  /* the caller's input is wrong; the message says how  */
#define MCPH_ERR_NOT_FOUND 2         /* a key, tool or upstream object does not exist       */
#define MCPH_ERR_UNAUTHENTICATED 3   /* credentials missing or rejected                      */
#define MCPH_ERR_PERMISSION_DENIED 4 /* credentials valid but not allowed                    */
#define MCPH_ERR_UNAVAILABLE 5       /* network or upstream failure; retrying may help       */
#define MCPH_ERR_CANCELLED 6         /* the call was cancelled                                */
#define MCPH_ERR_DEADLINE_EXCEEDED 7 /* a timeout passed                                      */
#define MCPH_ERR_RESOURCE_EXHAUSTED 8 /* rate limited or out of capacity                      */
#define MCPH_ERR_FAILED_PRECONDITION 9 /* the system is not in a state to do this (e.g. the
                                          function is not allowed from this thread/phase)     */
#define MCPH_ERR_INTERNAL 10         /* a bug or an unexpected condition                      */
#define MCPH_ERR_UNSUPPORTED 11      /* the host or plugin does not offer this                */

/* UTF-8 text as (pointer, length). data may be NULL when len is 0. */
typedef struct mcph_str {
  const char *data;
  size_t len;
} mcph_str;

/* mcph_str from a string literal, e.g. MCPH_LIT("echo"). */
#ifdef __cplusplus
#define MCPH_LIT(s) (mcph_str{(s), sizeof(s) - 1})
#else
#define MCPH_LIT(s) ((mcph_str){(s), sizeof(s) - 1})
#endif

/* Receives borrowed data from the host. Called zero or one time before the host function
 * that takes it returns, on the calling thread. Copy what you need. */
typedef void (*mcph_sink)(void *user, mcph_str data);

/* Log levels (RFC 5424 order, as MCP's notifications/message uses). */
typedef int32_t mcph_log_level;
#define MCPH_LOG_DEBUG 0
#define MCPH_LOG_INFO 1
#define MCPH_LOG_NOTICE 2
#define MCPH_LOG_WARNING 3
#define MCPH_LOG_ERROR 4
#define MCPH_LOG_CRITICAL 5
#define MCPH_LOG_ALERT 6
#define MCPH_LOG_EMERGENCY 7

/* Opaque host objects. */
typedef struct mcph_host_instance mcph_host_instance; /* the host's side of one plugin instance */
typedef struct mcph_call mcph_call; /* one request in progress: a tools/call, and (1.1) a
                                       prompts/get, resources/read or completion/complete */

/* ---------------------------------------------------------------------------------------
 * Tools (registered by the plugin during create)
 * ------------------------------------------------------------------------------------- */

/* A tool handler. [handler thread: any host worker thread; several calls of the same tool
 * or instance may run concurrently.]
 *
 * `instance` is what create() stored in *out_instance; `tool_user` is mcph_tool_def.user.
 * `arguments` is the call's arguments as a JSON object (borrowed, NUL-terminated); the host
 * has already validated them against the tool's input schema.
 *
 * The handler ends by handing its outcome to the host, either
 *   - host->call_result(call, json) with an MCP CallToolResult object, or
 *   - host->call_error(call, status, message) for a tool failure (an isError result),
 * and then returns MCPH_OK. Returning another status without either is treated as
 * call_error(call, status, "<status name>"). */
typedef mcph_status (*mcph_tool_handler)(void *instance, void *tool_user, mcph_call *call,
                                         mcph_str arguments);

typedef struct mcph_tool_def {
  uint32_t struct_size;    /* sizeof(mcph_tool_def) */
  mcph_str name;           /* required; 1-128 of [A-Za-z0-9_.-], unique in the plugin      */
  mcph_str title;          /* optional human-readable name                                   */
  mcph_str description;    /* optional but strongly recommended: the model reads it          */
  mcph_str input_schema;   /* JSON Schema object for the arguments; empty = no arguments    */
  mcph_str output_schema;  /* optional JSON Schema for structuredContent                     */
  mcph_str annotations;    /* optional MCP ToolAnnotations object as JSON                    */
  mcph_tool_handler handler; /* required */
  void *user;              /* passed back to the handler as tool_user                        */
  /* (1.3) Whether a client that supports MCP tasks may get a task for a call of this tool
   * (see "Tasks" below): one of MCPH_TASK_SUPPORT_*. The YAML's task_support overrides it. */
  uint32_t task_support;
} mcph_tool_def;

/* mcph_tool_def.task_support (1.3). */
#define MCPH_TASK_SUPPORT_DEFAULT 0   /* not said: the YAML decides, else forbidden          */
#define MCPH_TASK_SUPPORT_FORBIDDEN 1 /* always answered in the call                         */
#define MCPH_TASK_SUPPORT_OPTIONAL 2  /* a task when the client supports tasks              */
#define MCPH_TASK_SUPPORT_REQUIRED 3  /* only as a task: refused to clients without tasks    */

/* ---------------------------------------------------------------------------------------
 * Resources, prompts and completions (1.1; registered during create)
 *
 * Their handlers have the tool handler's shape, mcph_tool_handler(instance, user, call,
 * input): `input` is a JSON object, and the handler answers with host->call_result(call,
 * json) or host->call_error(call, status, message) exactly as a tool does. The difference:
 * a failure here is a JSON-RPC error for the client (MCPH_ERR_NOT_FOUND and
 * MCPH_ERR_INVALID_ARGUMENT become "Invalid params" (-32602), anything else "Internal
 * error" (-32603), with the message), not an isError result.
 * ------------------------------------------------------------------------------------- */

/* A resource: either one fixed `uri`, or a family of URIs matching `uri_template`
 * (RFC 6570 simple expansions, e.g. "docs://{team}/{page}"; a variable matches one or
 * more characters other than '/'). Set exactly one of the two.
 *
 * read:     input {"uri": "<the URI asked for>", "variables": {"team": "a", ...}}
 *           (variables only for templates); result: an MCP ReadResourceResult,
 *           {"contents": [{"uri": ..., "mimeType": ..., "text": ... | "blob": <base64>}]}.
 *           MCPH_ERR_NOT_FOUND when a template matched but the object does not exist.
 * complete: optional; suggestions for a template variable. input {"argument": {"name":
 *           "team", "value": "a"}, "context": {"arguments": {...}}}; result {"values":
 *           ["alpha", ...], "total": n?, "hasMore": bool?} (at most 100 values). */
typedef struct mcph_resource_def {
  uint32_t struct_size;       /* sizeof(mcph_resource_def) */
  mcph_str uri;               /* a fixed URI, or empty when uri_template is set            */
  mcph_str uri_template;      /* an RFC 6570 template, or empty when uri is set            */
  mcph_str name;              /* required; short, for people                               */
  mcph_str title;             /* optional */
  mcph_str description;       /* optional */
  mcph_str mime_type;         /* optional, e.g. "text/plain" */
  mcph_str annotations;       /* optional MCP Annotations object as JSON                   */
  mcph_tool_handler read;     /* required */
  mcph_tool_handler complete; /* optional (templates only) */
  void *user;                 /* passed back to both handlers as their `user`              */
} mcph_resource_def;

/* A prompt template.
 * get:      input: the arguments object ({"name": "value"}, string values; the host has
 *           checked that required arguments are present); result: an MCP GetPromptResult,
 *           {"description": ...?, "messages": [{"role": "user", "content": {...}}]}.
 * complete: optional; suggestions for an argument, as for resources. */
typedef struct mcph_prompt_def {
  uint32_t struct_size;       /* sizeof(mcph_prompt_def) */
  mcph_str name;              /* required; the same rules as tool names                    */
  mcph_str title;             /* optional */
  mcph_str description;       /* optional but recommended */
  mcph_str arguments;         /* optional JSON array of {"name", "description"?,
                                 "required"?: bool}                                         */
  mcph_tool_handler get;      /* required */
  mcph_tool_handler complete; /* optional */
  void *user;
} mcph_prompt_def;

/* A credential each user brings (1.1). Over HTTP with OAuth (server.http.auth.mode: oauth)
 * the host asks every user for it on its sign-in form, stores it encrypted, and
 * host->credential(hi, call, key, ...) then answers with the calling user's value. Without
 * OAuth (stdio, static tokens) the instance's YAML credentials answer as before. */
typedef struct mcph_user_credential_def {
  uint32_t struct_size; /* sizeof(mcph_user_credential_def) */
  mcph_str key;         /* required; the key handlers look up, e.g. "api_token"            */
  mcph_str label;       /* required; what the form calls it, e.g. "Codesphere API token"   */
  mcph_str help;        /* optional; where to find it                                      */
  bool secret;          /* true: a password field, never shown again                        */
} mcph_user_credential_def;

/* ---------------------------------------------------------------------------------------
 * Outbound HTTP (a host service)
 * ------------------------------------------------------------------------------------- */

typedef struct mcph_http_header {
  mcph_str name;
  mcph_str value;
} mcph_http_header;

typedef struct mcph_http_response {
  uint32_t struct_size;
  int32_t status;                  /* HTTP status code, or 0 when no response arrived      */
  const mcph_http_header *headers; /* response headers (borrowed)                          */
  size_t header_count;
  mcph_str body;                   /* whole body; empty when on_body streamed it           */
  mcph_str error;                  /* transport error text when status is 0, else empty    */
} mcph_http_response;

typedef struct mcph_http_request {
  uint32_t struct_size;            /* sizeof(mcph_http_request) */
  mcph_str method;                 /* "GET", "POST", ... */
  mcph_str url;                    /* absolute http:// or https:// URL                      */
  const mcph_http_header *headers; /* extra request headers */
  size_t header_count;
  mcph_str body;                   /* request body (may be empty)                           */
  uint32_t timeout_ms;             /* whole-request deadline; 0 = host default (30 s)       */
  uint32_t connect_timeout_ms;     /* 0 = host default (10 s)                               */
  /* The call this request serves, or NULL. When set, the request is aborted promptly
   * (MCPH_ERR_CANCELLED) once the call is cancelled. */
  mcph_call *call;
  /* Streaming (optional, for Server-Sent Events and large bodies). When on_body is set,
   * the body is handed over chunk by chunk as it arrives instead of being collected;
   * on_head, if set, first sees the status and headers (body empty). Either may return
   * false to stop reading; the request then ends with MCPH_OK and what arrived so far.
   * Both are called on the thread that called http_request, before it returns. */
  bool (*on_head)(void *user, const mcph_http_response *head);
  bool (*on_body)(void *user, mcph_str chunk);
  void *user;
  /* (1.4) For work done outside a call (call NULL) on behalf of one, such as a poller
   * following what a tool call started: that call's trace context, as call_trace_context
   * gave it (a W3C traceparent). With tracing on, the request's span then starts a trace
   * of its own that links to the call's. Ignored when `call` is set (the request is then a
   * child of the call's span) and on hosts before 1.4. May be empty. */
  mcph_str trace_link;
} mcph_http_request;

/* ---------------------------------------------------------------------------------------
 * The host services table
 * ------------------------------------------------------------------------------------- */

typedef struct mcph_host_api {
  uint32_t struct_size; /* sizeof(mcph_host_api) as the host knows it */
  uint16_t abi_major;   /* the host's ABI version */
  uint16_t abi_minor;
  mcph_str host_version; /* e.g. "0.1.0" */

  /* -- Registration ---------------------------------------------------------------- */

  /* [create] Register a tool. The host copies every field. Fails with
   * MCPH_ERR_INVALID_ARGUMENT (bad name or schema JSON, duplicate name; see the log) or
   * MCPH_ERR_FAILED_PRECONDITION (called outside create). */
  mcph_status (*register_tool)(mcph_host_instance *hi, const mcph_tool_def *def);

  /* [create] Say why create() failed; shown to the user. Copied. */
  void (*set_create_error)(mcph_host_instance *hi, mcph_str message);

  /* -- Logging --------------------------------------------------------------------- */

  /* [any thread] Write a line to the host log (stderr), tagged with the instance name.
   * Never log secrets. */
  void (*log)(mcph_host_instance *hi, mcph_log_level level, mcph_str message);

  /* -- Per call -------------------------------------------------------------------- */

  /* [handler] Hand over the call's result: an MCP CallToolResult object as JSON, e.g.
   * {"content":[{"type":"text","text":"hi"}],"structuredContent":{...}}. Copied. The last
   * call_result/call_error wins. MCPH_ERR_INVALID_ARGUMENT if it is not a JSON object.
   * Written compactly (no whitespace between tokens, each top-level key once and without
   * escapes), a tool's result usually reaches the client as that text, unparsed. */
  mcph_status (*call_result)(mcph_call *call, mcph_str result_json);

  /* [handler] The tool failed: the client receives an isError result with this text. */
  mcph_status (*call_error)(mcph_call *call, mcph_status status, mcph_str message);

  /* [handler, or a thread working for the handler while it runs] Report progress. The
   * host forwards it only when the client asked for progress, and drops values that do
   * not increase. total <= 0 means unknown. message may be empty. */
  void (*call_progress)(mcph_call *call, double progress, double total, mcph_str message);

  /* [same as call_progress] Send a log message to the client for this call
   * (notifications/message), if the client's log level lets it through. data_json is any
   * JSON value (a JSON string for plain text); logger may be empty. */
  void (*call_log)(mcph_call *call, mcph_log_level level, mcph_str logger, mcph_str data_json);

  /* [same as call_progress] True once the client cancelled the call, its deadline passed,
   * or the host is shutting down. Check it between steps and stop early. */
  bool (*call_cancelled)(mcph_call *call);

  /* [any thread] Look up a credential (e.g. "api_token"). With a call, the credentials
   * of the caller that made it (the signed-in user's own value for a key declared with
   * register_user_credential, else the instance's YAML credentials); with call == NULL,
   * the instance's own.
   * The value goes to `sink`; MCPH_ERR_NOT_FOUND (sink not called) if unset or empty. */
  mcph_status (*credential)(mcph_host_instance *hi, mcph_call *call, mcph_str key,
                            mcph_sink sink, void *user);

  /* [handler] The caller's stable, opaque principal id (empty for stdio and static
   * tokens). Use it to keep one user's data apart from another's. */
  void (*call_principal)(mcph_call *call, mcph_sink sink, void *user);

  /* -- Durable key-value state (per instance; survives restarts and crashes) ---------- */

  /* [any thread] Read a value. MCPH_ERR_NOT_FOUND if absent. */
  mcph_status (*state_get)(mcph_host_instance *hi, mcph_str key, mcph_sink sink, void *user);
  /* [any thread] Write a value; durable when it returns. */
  mcph_status (*state_put)(mcph_host_instance *hi, mcph_str key, mcph_str value);
  /* [any thread] Delete a key; MCPH_OK even if it was absent. */
  mcph_status (*state_delete)(mcph_host_instance *hi, mcph_str key);
  /* [any thread] Visit every key starting with prefix, in key order. `each` returns false
   * to stop. Do not call other state functions from inside `each`. */
  mcph_status (*state_list)(mcph_host_instance *hi, mcph_str prefix,
                            bool (*each)(void *user, mcph_str key, mcph_str value), void *user);

  /* -- Outbound HTTP ---------------------------------------------------------------- */

  /* [any thread] Perform one HTTP request; blocks until it ends. Returns MCPH_OK when a
   * response arrived (whatever its status; see on_response), MCPH_ERR_CANCELLED,
   * MCPH_ERR_DEADLINE_EXCEEDED, MCPH_ERR_UNAVAILABLE (connection failed or broke) or
   * MCPH_ERR_INVALID_ARGUMENT (bad URL or method). on_response, if set, is called once
   * before return with the final response (also for errors, with status 0 and `error`). */
  mcph_status (*http_request)(mcph_host_instance *hi, const mcph_http_request *request,
                              void (*on_response)(void *user, const mcph_http_response *r),
                              void *user);

  /* -- JSON helper for C plugins ------------------------------------------------------ */

  /* [any thread] Find the value at RFC 6901 `pointer` (e.g. "/text", "" for the root)
   * in `json` and hand its JSON text to `sink` (a string arrives quoted and escaped, ready
   * to be pasted into JSON; use json_string for its plain text). MCPH_ERR_NOT_FOUND if
   * there is no such value, MCPH_ERR_INVALID_ARGUMENT if `json` does not parse. */
  mcph_status (*json_get)(mcph_str json, mcph_str pointer, mcph_sink sink, void *user);
  /* [any thread] Like json_get, but the value must be a JSON string and `sink` gets its
   * unescaped UTF-8 text. MCPH_ERR_INVALID_ARGUMENT if it is not a string. */
  mcph_status (*json_string)(mcph_str json, mcph_str pointer, mcph_sink sink, void *user);
  /* [any thread] Quote and escape `text` as a JSON string literal into `sink`. */
  void (*json_quote)(mcph_str text, mcph_sink sink, void *user);

  /* ==== 1.1 ========================================================================== */

  /* [create] Register a resource or resource template; a prompt. Copied, checked like
   * register_tool (MCPH_ERR_INVALID_ARGUMENT names the problem in the log). */
  mcph_status (*register_resource)(mcph_host_instance *hi, const mcph_resource_def *def);
  mcph_status (*register_prompt)(mcph_host_instance *hi, const mcph_prompt_def *def);

  /* -- Input from the client (elicitation, sampling, roots) --------------------------- *
   *
   * One mechanism for every protocol revision, shaped like 2026-07-28's "multi round-trip
   * requests": a handler that needs input from the user or the client's model
   *   1. looks for the answer with call_input_response(call, key, ...);
   *   2. if it is not there yet, asks with call_request_input(call, key, request) (as many
   *      keys as it needs), optionally keeps what it has worked out so far with
   *      call_set_state, and returns without a result;
   *   3. is then run again, from the start, with the answers (and call_state) available.
   * For 2026-07-28 clients the host answers step 2 with an input_required result and the
   * client retries; for older clients the host sends real elicitation/create,
   * sampling/createMessage or roots/list requests and re-runs the handler itself. Either
   * way, write handlers so that running them again is harmless, and do side effects only
   * once every answer is in. Rounds are limited (8). */

  /* [handler] The capabilities the client declared (an MCP ClientCapabilities object,
   * e.g. {"elicitation":{},"sampling":{}}; {} when none). Ask only for what is there. */
  void (*call_client_capabilities)(mcph_call *call, mcph_sink sink, void *user);

  /* [handler] Ask the client for input. request_json is {"method": "elicitation/create" |
   * "sampling/createMessage" | "roots/list", "params": {...}} with the params that method
   * takes in MCP. `key` (1-64 of [A-Za-z0-9_.-]) names the answer. If the client did not
   * declare the capability the method needs, the request fails with MCP's
   * MissingRequiredClientCapability error (-32021) once the handler returns, and this
   * returns MCPH_ERR_UNSUPPORTED. MCPH_ERR_INVALID_ARGUMENT for a bad key or request. */
  mcph_status (*call_request_input)(mcph_call *call, mcph_str key, mcph_str request_json);

  /* [handler] The client's answer to the input request named `key` (the method's result
   * object as JSON, e.g. {"action":"accept","content":{...}} for elicitation).
   * MCPH_ERR_NOT_FOUND (sink not called) if there is none. */
  mcph_status (*call_input_response)(mcph_call *call, mcph_str key, mcph_sink sink, void *user);

  /* [handler] Keep `state` (any bytes, at most 16 KiB) for the next round of this request;
   * call_state returns it then. The host protects it: the client sees only an opaque,
   * signed token bound to this request, and a tampered or expired token is refused before
   * the handler runs. MCPH_ERR_NOT_FOUND from call_state in the first round. */
  mcph_status (*call_set_state)(mcph_call *call, mcph_str state);
  mcph_status (*call_state)(mcph_call *call, mcph_sink sink, void *user);

  /* [any thread] The resource at `uri` changed: clients that subscribed to it are told
   * (notifications/resources/updated). Cheap when nobody subscribed. */
  void (*resource_updated)(mcph_host_instance *hi, mcph_str uri);

  /* [create] Declare a credential each user brings (see mcph_user_credential_def). */
  mcph_status (*register_user_credential)(mcph_host_instance *hi, const mcph_user_credential_def *def);

  /* -- 1.2 ----------------------------------------------------------------------------- */

  /* [create] Check what a user typed on the sign-in form before the host issues them
   * anything. The host runs `check` like a tool handler (arguments "{}", a deadline of
   * 15 s) in which credential(hi, call, key, ...) answers with what this user entered.
   * Answer with call_result and a JSON object:
   *   {}                                        accepted;
   *   {"values": {"team_id": "42"}}             accepted; keep these values (strings, not
   *                                             secret) with the user's credentials too;
   *   {"choose": [{"key": "team_id", "label": "Default team", "help": "...",
   *                "options": [{"value": "42", "label": "Acme"}, ...]}]}
   *                                             ask the user to pick (at most 100 options);
   *                                             the check runs again with the pick
   *                                             answering credential(hi, call, "team_id").
   * Or refuse with call_error: the message is shown on the form (never echo what the user
   * typed into it). MCPH_ERR_UNAVAILABLE means "could not check now, try again" and does
   * not count as a failed attempt; any other status does. One check per instance. */
  mcph_status (*register_credential_check)(mcph_host_instance *hi, mcph_tool_handler check, void *user);

  /* [any thread] The credential `key` of the user `principal` (what call_principal gave
   * in one of their calls), for work done on their behalf outside a call, such as a
   * poller. Answers only while that user still holds a grant: MCPH_ERR_NOT_FOUND once
   * they were revoked, for a key they have no value for, for an unknown principal, and
   * when the transport knows no users (stdio, static tokens: use credential(hi, NULL,...)).
   * Do not keep the value; ask again each time you need it. */
  mcph_status (*user_credential)(mcph_host_instance *hi, mcph_str principal, mcph_str key,
                                 mcph_sink sink, void *user);

  /* -- 1.3 ----------------------------------------------------------------------------- */

  /* [create] Say whether the instance credential `key` (from the YAML `credentials`) is a
   * secret. The host removes the values of secret credentials from its log, from what
   * handlers log, and from results and error texts (as "[REDACTED]", inside JSON strings
   * and keys; numbers and other values are never changed). A key not declared counts as
   * secret. Declare identifiers that are not secret, such as an organisation id, with
   * secret = false, so that a result mentioning organisation 12345 keeps the number.
   * (Per-user credentials say the same with mcph_user_credential_def.secret.) */
  mcph_status (*declare_credential)(mcph_host_instance *hi, mcph_str key, bool secret);

  /* Several mcp-host replicas may share one store (store.backend: postgresql): the same
   * instance then runs in each of them, on the same state. These two primitives keep their
   * background work apart.
   *
   * [any thread] Compare-and-set: when the key's value is *expected (expected NULL: the key
   * is absent), set it to *value (value NULL: delete the key) and return MCPH_OK; when it
   * is not, change nothing and return MCPH_ERR_FAILED_PRECONDITION. Atomic across every
   * replica: read, compute, state_put_if, and on FAILED_PRECONDITION read again. */
  mcph_status (*state_put_if)(mcph_host_instance *hi, mcph_str key, const mcph_str *expected,
                              const mcph_str *value);
  /* [any thread] Hold the lease `name` (this instance's namespace) for ttl_ms: MCPH_OK when
   * this replica holds it now (taken, or renewed: call again before ttl_ms passes, e.g.
   * every ttl_ms / 3), MCPH_ERR_FAILED_PRECONDITION while another replica holds it. A
   * replica that dies stops renewing; another takes the lease once ttl_ms has passed. One
   * owner per replica and instance: threads of one instance share its leases. */
  mcph_status (*lease_acquire)(mcph_host_instance *hi, mcph_str name, uint32_t ttl_ms);
  /* [any thread] Give the lease up at once (MCPH_OK also when this replica did not hold it). */
  mcph_status (*lease_release)(mcph_host_instance *hi, mcph_str name);

  /* -- Tasks ------------------------------------------------------------------------------ *
   *
   * MCP tasks let a client get an answer at once for a long call and fetch its outcome
   * later. When a client that supports them calls a tool whose task support is optional or
   * required (mcph_tool_def.task_support, or the YAML), the host answers with a task and
   * keeps running the handler; progress messages become the task's status message and the
   * handler's result becomes the task's result. Nothing changes for the handler.
   *
   * Some work outlives any handler, even the host process: an agent run upstream that takes
   * an hour. Its handler may hand the call over instead of answering:
   *   1. it starts the work, then calls call_continue_as_task(call, handle) with a handle of
   *      its choosing (unique within the instance, e.g. the upstream run id) and returns
   *      without a result;
   *   2. later, from any thread, even after a restart of the host, it reports the task's
   *      progress, an input request or its outcome with task_update(hi, handle, ...);
   *   3. it reads what the client did (cancelled the task, answered an input request) with
   *      task_get(hi, handle, ...), e.g. each time it polls its upstream.
   * call_continue_as_task fails with MCPH_ERR_UNSUPPORTED when this call is not a task (a
   * client without tasks support, or a tool whose task support is forbidden): the handler
   * then answers in the call as it always did. */

  /* [handler] This call continues as a task the plugin finishes later under `handle` (1-128
   * bytes). MCPH_ERR_UNSUPPORTED: the call cannot be a task; answer it now. An empty handle
   * only asks, changing nothing: MCPH_ERR_UNSUPPORTED, or MCPH_ERR_INVALID_ARGUMENT when the
   * call could continue as a task (so start the work only then). */
  mcph_status (*call_continue_as_task)(mcph_call *call, mcph_str handle);

  /* [any thread] Report on the task handed over under `handle`. update_json is one of
   *   {"status": "working", "message": "..."}              progress (message optional)
   *   {"status": "input_required", "inputRequests": {"key": {"method": ..., "params": ...}}}
   *                                                         ask the client, as call_request_input
   *   {"status": "completed", "result": {CallToolResult}}   the outcome (isError allowed)
   *   {"status": "failed", "message": "..."}                the work broke (not a tool error)
   * MCPH_ERR_NOT_FOUND when no task has that handle (expired, or never made);
   * MCPH_ERR_FAILED_PRECONDITION when the task already ended (the client cancelled it, say);
   * MCPH_ERR_INVALID_ARGUMENT for an update that is none of the above. */
  mcph_status (*task_update)(mcph_host_instance *hi, mcph_str handle, mcph_str update_json);

  /* [any thread] The task handed over under `handle`, as JSON: {"status": "working" |
   * "input_required" | "completed" | "failed" | "cancelled", "inputResponses": {"key":
   * result, ...}} (the client's answers to the open input requests, once it sent them).
   * "cancelled" means the client cancelled it: stop the work. MCPH_ERR_NOT_FOUND if none. */
  mcph_status (*task_get)(mcph_host_instance *hi, mcph_str handle, mcph_sink sink, void *user);

  /* -- 1.4 ----------------------------------------------------------------------------- */

  /* [handler] The call's trace context: a W3C traceparent ("00-<trace id>-<span id>-<flags>",
   * 55 characters) naming the call's span. Keep it with work that outlives the handler
   * (it is not a secret, and stays meaningful after a restart) and pass it as
   * mcph_http_request.trace_link on the requests that work makes later. MCPH_ERR_NOT_FOUND
   * (sink not called) when the host traces nothing. */
  mcph_status (*call_trace_context)(mcph_call *call, mcph_sink sink, void *user);
} mcph_host_api;

/* ---------------------------------------------------------------------------------------
 * What the plugin provides
 * ------------------------------------------------------------------------------------- */

typedef struct mcph_plugin_descriptor {
  uint32_t struct_size; /* sizeof(mcph_plugin_descriptor) */
  uint16_t abi_major;   /* MCPH_ABI_MAJOR the plugin was built with */
  uint16_t abi_minor;   /* MCPH_ABI_MINOR the plugin was built with */
  mcph_str name;        /* e.g. "example-echo" (for logs and diagnostics) */
  mcph_str version;     /* the plugin's own version, e.g. "1.2.0" */
  mcph_str description; /* one line */

  /* Create an instance. [Called on a host thread, never concurrently with any other call
   * on this instance, under a deadline (plugins[].create_timeout_ms, 30 s by default): a
   * create() that has not returned by then fails the instance, and the host never calls it
   * again, nor unloads the library.] `settings_json` is the instance's YAML `settings` as a
   * JSON object (borrowed). Register tools with host->register_tool(hi, ...). `hi` and
   * `host` stay valid until destroy() returns. On success store the instance pointer
   * (may be NULL if the plugin needs none) and return MCPH_OK; on failure call
   * host->set_create_error(hi, why) and return an error status (destroy is not called). */
  mcph_status (*create)(const mcph_host_api *host, mcph_host_instance *hi,
                        mcph_str settings_json, void **out_instance);

  /* Destroy an instance. [A host thread; after every handler of the instance returned.]
   * Stop and join the plugin's own threads before returning. */
  void (*destroy)(void *instance);
} mcph_plugin_descriptor;

/* The exported entry point. [Main thread, once per load, before anything else.]
 * The host passes its ABI version; the plugin returns a pointer to a descriptor that stays
 * valid until the library is unloaded, or NULL if it cannot work with this host (for
 * example, it needs a newer minor than host_minor offers). The host refuses a descriptor
 * whose abi_major differs from its own. Must be quick and free of side effects. */
typedef const mcph_plugin_descriptor *(*mcph_plugin_entry_fn)(uint16_t host_major,
                                                              uint16_t host_minor);

/* Plugins define exactly this function (the declaration keeps its signature honest). */
MCPH_PLUGIN_EXPORT const mcph_plugin_descriptor *mcph_plugin_entry(uint16_t host_major,
                                                                  uint16_t host_minor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MCP_PLUGIN_ABI_H */
