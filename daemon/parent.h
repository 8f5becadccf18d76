/*
 * The parent (`todod: parent`): configuration, listening sockets, key
 * files, the TODO store, and supervision of the workers and keyholders.
 * parent.c: main loop, signals, children; apply.c: starting and reloading
 * a configuration; pstore.c: the workers' store requests and group commit;
 * metrics.c: /metrics; listen.c: binding; common/proc.c: the children.
 */
#ifndef TODOD_PARENT_H
#define TODOD_PARENT_H

struct config;

int	parent_main(struct config *, const char *, int, int);

#endif
