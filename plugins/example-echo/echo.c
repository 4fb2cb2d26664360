/*
 * example-echo: the smallest useful mcp-host plugin, in plain C against abi.h alone.
 * Copy this file to start a C plugin. Tools:
 *   echo {text}  -> the text back
 *   add  {a, b}  -> a + b, as text and as structuredContent {"sum": ...}
 * The host validates arguments against the input schemas before a handler runs, so the
 * handlers can trust the types.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_plugin/abi.h"

/* A growable buffer that host sinks write into. */
typedef struct buffer {
  char *data;
  size_t len;
} buffer;

static void to_buffer(void *user, mcph_str data) {
  buffer *b = (buffer *)user;
  char *grown = (char *)realloc(b->data, b->len + data.len + 1);
  if (grown == NULL) return;
  memcpy(grown + b->len, data.data, data.len);
  b->data = grown;
  b->len += data.len;
  b->data[b->len] = '\0';
}

static void append(buffer *b, const char *text) { to_buffer(b, (mcph_str){text, strlen(text)}); }

/* The plugin keeps the host table in its instance; there is no global state. */
typedef struct echo_instance {
  const mcph_host_api *host;
} echo_instance;

static mcph_status echo(void *instance, void *tool_user, mcph_call *call, mcph_str arguments) {
  const mcph_host_api *host = ((echo_instance *)instance)->host;
  (void)tool_user;
  buffer text = {NULL, 0};
  /* json_get hands back the value's JSON text: a quoted, escaped string, ready to paste. */
  if (host->json_get(arguments, MCPH_LIT("/text"), to_buffer, &text) != MCPH_OK) {
    return host->call_error(call, MCPH_ERR_INVALID_ARGUMENT, MCPH_LIT("text is required"));
  }
  buffer result = {NULL, 0};
  append(&result, "{\"content\":[{\"type\":\"text\",\"text\":");
  append(&result, text.data);
  append(&result, "}]}");
  mcph_status st = host->call_result(call, (mcph_str){result.data, result.len});
  free(text.data);
  free(result.data);
  return st;
}

static double number_at(const mcph_host_api *host, mcph_str json, mcph_str pointer) {
  buffer b = {NULL, 0};
  double value = 0;
  if (host->json_get(json, pointer, to_buffer, &b) == MCPH_OK && b.data != NULL) value = strtod(b.data, NULL);
  free(b.data);
  return value;
}

static mcph_status add(void *instance, void *tool_user, mcph_call *call, mcph_str arguments) {
  const mcph_host_api *host = ((echo_instance *)instance)->host;
  (void)tool_user;
  double sum = number_at(host, arguments, MCPH_LIT("/a")) + number_at(host, arguments, MCPH_LIT("/b"));
  char result[256];
  int n = snprintf(result, sizeof result,
                   "{\"content\":[{\"type\":\"text\",\"text\":\"%.17g\"}],\"structuredContent\":{\"sum\":%.17g}}",
                   sum, sum);
  return host->call_result(call, (mcph_str){result, (size_t)n});
}

static mcph_status echo_create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str settings,
                               void **out_instance) {
  (void)settings;
  echo_instance *self = (echo_instance *)calloc(1, sizeof *self);
  if (self == NULL) {
    host->set_create_error(hi, MCPH_LIT("out of memory"));
    return MCPH_ERR_RESOURCE_EXHAUSTED;
  }
  self->host = host;

  mcph_tool_def echo_def = {0};
  echo_def.struct_size = sizeof echo_def;
  echo_def.name = MCPH_LIT("echo");
  echo_def.title = MCPH_LIT("Echo");
  echo_def.description = MCPH_LIT("Returns the given text unchanged.");
  echo_def.input_schema = MCPH_LIT(
      "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"description\":\"Text to echo\"}},"
      "\"required\":[\"text\"],\"additionalProperties\":false}");
  echo_def.annotations = MCPH_LIT("{\"readOnlyHint\":true,\"openWorldHint\":false}");
  echo_def.handler = echo;

  mcph_tool_def add_def = {0};
  add_def.struct_size = sizeof add_def;
  add_def.name = MCPH_LIT("add");
  add_def.title = MCPH_LIT("Add two numbers");
  add_def.description = MCPH_LIT("Returns a + b.");
  add_def.input_schema = MCPH_LIT(
      "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"}},"
      "\"required\":[\"a\",\"b\"],\"additionalProperties\":false}");
  add_def.output_schema = MCPH_LIT(
      "{\"type\":\"object\",\"properties\":{\"sum\":{\"type\":\"number\"}},\"required\":[\"sum\"]}");
  add_def.annotations = MCPH_LIT("{\"readOnlyHint\":true,\"idempotentHint\":true,\"openWorldHint\":false}");
  add_def.handler = add;

  if (host->register_tool(hi, &echo_def) != MCPH_OK || host->register_tool(hi, &add_def) != MCPH_OK) {
    free(self);
    return MCPH_ERR_INVALID_ARGUMENT; /* the host already knows why */
  }
  *out_instance = self;
  return MCPH_OK;
}

static void echo_destroy(void *instance) { free(instance); }

MCPH_PLUGIN_EXPORT const mcph_plugin_descriptor *mcph_plugin_entry(uint16_t host_major, uint16_t host_minor) {
  static const mcph_plugin_descriptor descriptor = {
      sizeof(mcph_plugin_descriptor), MCPH_ABI_MAJOR, MCPH_ABI_MINOR,
      MCPH_LIT("example-echo"),       MCPH_LIT("1.0.0"),
      MCPH_LIT("Echo and add: the plain-C example plugin"),
      echo_create,                    echo_destroy,
  };
  (void)host_minor; /* 1.0 needs nothing newer than any 1.x host offers */
  return host_major == MCPH_ABI_MAJOR ? &descriptor : NULL;
}
