/*
 * JSON for the TODO API, on yajl: strict validation of request bodies and
 * generation of the response objects.
 */
#ifndef TODOD_JSON_H
#define TODOD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"		/* TODO_TASK_MAX */

struct buf;

enum json_mode {
	JSON_CREATE,		/* POST: task required, done optional */
	JSON_UPDATE		/* PATCH: task and/or done, at least one */
};

#define JSON_NAME_SHOWN	32	/* bytes of an unknown member's name */

struct todo_input {
	int		 has_task;
	char		*task;		/* NUL-terminated, valid UTF-8 (malloc) */
	size_t		 tasklen;
	int		 has_done;
	int		 done;
	char		 errbuf[JSON_NAME_SHOWN + 32];	/* names a member */
};

/*
 * Validate a request body: a single JSON object whose members are only
 * "task" (non-empty string, valid UTF-8, at most TODO_TASK_MAX bytes after
 * unescaping; \u0000 and lone surrogates rejected) and "done" (boolean);
 * unknown or duplicate members, trailing garbage, and an empty PATCH are
 * errors.  Returns 0, or -1 with *err set to a short reason for the 400
 * body ("task must be a non-empty string", ...): static, or for an unknown
 * member its name ("unknown member \"tsak\"") in the input's errbuf.
 */
int	json_parse_todo(const char *, size_t, enum json_mode,
	    struct todo_input *, const char **);
void	todo_input_clear(struct todo_input *);

/* Append a JSON string literal, quotes included. */
int	json_add_string(struct buf *, const char *, size_t);

/* Append {"id":N,"task":"...","done":false}. */
int	json_add_todo(struct buf *, int64_t, const char *, size_t, int);

/* Append {"error":"..."} */
int	json_add_error(struct buf *, const char *);

#endif
