/*
 * todod.conf(5) parser.
 *
 * The lexer, the include stack and the macro machinery live here together,
 * in the OpenBSD parse.y tradition: `$name` is expanded by pushing the
 * macro's text back into the input, so a macro holding several words works
 * as if they had been written out.  Grammar actions stay short and call the
 * parse_* helpers below, which record errors as "FILE:LINE: what" and keep
 * going, so that one run reports every problem.
 *
 * All parser state is static and reset by config_parse(): the daemon calls
 * it again on every reload.  Token strings live in an arena freed at the
 * end of each parse, which keeps error recovery free of leaks.
 */

%{
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libutil.h>
#include <tls.h>

#include "authz.h"
#include "storeopen.h"
#include "config.h"
#include "fetch.h"
#include "log.h"
#include "proto.h"

#define PARSE_MAX_STRING	8192	/* one token */
#define PARSE_MAX_DEPTH		8	/* include nesting */
#define PARSE_MAX_FILES		64	/* files opened by one parse */
#define PARSE_MAX_PUSHBACK	(2 * PARSE_MAX_STRING + 64)

/* Markers around an expanded macro: no expansion inside an expansion. */
#define PARSE_START_EXPAND	0x101
#define PARSE_DONE_EXPAND	0x102

struct parse_file {
	TAILQ_ENTRY(parse_file)	 entry;
	FILE			*stream;
	char			*name;
	int			 lineno;
	int			 lastc;		/* last byte read from stream */
	int			 eof;		/* stream hit EOF */
	int			 expanding;	/* inside a macro's text */
	dev_t			 dev;
	ino_t			 ino;
	int			*pb;		/* pushed-back characters */
	size_t			 npb;
	size_t			 pbsize;
};
TAILQ_HEAD(parse_files, parse_file);

struct parse_macro {
	TAILQ_ENTRY(parse_macro) entry;
	char			*name;
	char			*value;
	int			 cmdline;	/* -D: kept across parses */
};
TAILQ_HEAD(parse_macros, parse_macro);

/* Line numbers of settings seen so far (0: not set). */
struct parse_seen {
	int	 listen;
	int	 prefork;
	int	 keyholders;
	int	 user;
	int	 chroot;
	int	 database;
	int	 pidfile;
	int	 timeout_request;
	int	 timeout_idle;
	int	 timeout_handshake;
	int	 timeout_ocsp;
	int	 max_connections;
	int	 max_signatures;
	int	 expiry;
	int	 tls;
	int	 protocols;
	int	 ciphers;
	int	 ticket;
	int	 crlurl;
	int	 staple;
	int	 stapleurl;
	int	 cache_size;
	int	 client_ocsp;
	int	 client_ocsp_url;
};

static struct parse_files	 files = TAILQ_HEAD_INITIALIZER(files);
static struct parse_file	*file;
static struct parse_macros	 macros = TAILQ_HEAD_INITIALIZER(macros);
static struct config		*conf;
static struct parse_seen	 seen;
static char			*conf_dir;	/* absolute */
static const char		*top_name;	/* as the caller wrote it */
static int			 top_eofline;
static char			*errbuf;
static size_t			 errbuflen;
static int			 errors;
static int			 lasttok;
static int			 lexer_failed;	/* ERROR is the lookahead */
static int			 nopened;
static char			**arena;
static size_t			 narena, arenasize;
static struct authz_rule	*cur_rule;
static int			 cur_rule_bad;

typedef struct {
	long long	 number;
	char		*string;	/* also the text of a NUMBER */
	int		 lineno;
} YYSTYPE;
#define YYSTYPE_IS_DECLARED 1

int		 yyparse(void);
static int	 yylex(void);
static int	 yyerror(const char *, ...)
		    __attribute__((__format__(printf, 1, 2)));
static void	 parse_report(const char *, int, const char *, ...)
		    __attribute__((__format__(printf, 3, 4)));

static int	 kw_lookup(const char *);
static int	 lgetc(int);
static int	 lungetc(int);
static int	 findeol(void);
static int	 lexerror(const char *, ...)
		    __attribute__((__format__(printf, 1, 2)));
static char	*arena_keep(char *);
static void	 arena_free(void);

static struct parse_file *pushfile(const char *, int);
static int	 popfile(void);
static void	 parse_reset(void);

static struct parse_macro *macro_find(const char *);
static int	 macro_name_ok(const char *);
static int	 macro_set(const char *, const char *, int);
static void	 macro_define(const char *, const char *);
static void	 macros_clear_file(void);

static int	 parse_once(int *, const char *);
static int	 parse_range(const char *, long long, long long, long long);
static char	*parse_path(const char *, const char *);
static void	 parse_string(char **, int *, const char *, const char *);
static void	 parse_origin(const char *);
static void	 parse_pathset(char **, int *, const char *, const char *);
static void	 parse_include(const char *);
static int	 parse_port(const char *, long long);
static void	 parse_listen(const char *, int);
static void	 parse_protocols(const char *);
static void	 parse_ciphers(const char *);
static void	 parse_rule_begin(int);
static void	 parse_rule_cond(enum authz_match, const char *);
static void	 parse_rule_methods(uint32_t);
static void	 parse_rule_path(const char *);
static void	 parse_rule_end(void);
static uint32_t	 parse_method(const char *);
static void	 parse_finish(void);
static void	 parse_size(const char *, const char *, uint64_t *);
%}

%token	ALL ALLOW ANY CA CERTIFICATE CHROOT CIPHERS CLIENT CN CONNECTIONS
%token	CRL DATABASE DNS EMAIL EXPIRY FINGERPRINT FROM HANDSHAKE IDLE INCLUDE
%token	IP KEY KEYHOLDERS LIFETIME LISTEN MAXIMUM METHOD METRICS ON OU PATH
%token	PIDFILE PORT PREFORK PROTOCOLS READ REQUEST SAN TICKET TIMEOUT TLS URI
%token	SIGNATURES USER WARNING WRITE
%token	MODULE PIN PKCS11
%token	REFRESH URL
%token	OCSP STAPLE AUTO PREFER REQUIRE
%token	CACHE SIZE
%token	ERROR
%token	STRING NUMBER

%%

grammar		: /* empty */
		| grammar '\n'
		| grammar include '\n'
		| grammar varset '\n'
		| grammar main '\n'
		| grammar tls '\n'
		| grammar allow '\n'
		| grammar error '\n'		{ yyerrok; }
		;

include		: INCLUDE STRING		{ parse_include($2.string); }
		;

value		: STRING			{ $$ = $1; }
		| NUMBER			{ $$ = $1; }
		;

varset		: STRING '=' value		{
			macro_define($1.string, $3.string);
		}
		;

optnl		: /* empty */
		| optnl '\n'
		;

nl		: '\n' optnl
		;

comma		: /* empty */
		| ','
		;

port		: /* empty */			{ $$.number = 8443; }
		| PORT NUMBER			{
			$$.number = parse_port(NULL, $2.number);
		}
		| PORT STRING			{
			$$.number = parse_port($2.string, 0);
		}
		;

main		: LISTEN ON STRING port		{
			if (seen.listen == 0)
				seen.listen = $1.lineno;
			if ($4.number > 0)
				parse_listen($3.string, (int)$4.number);
		}
		| PREFORK NUMBER		{
			if (parse_once(&seen.prefork, "prefork") &&
			    parse_range("prefork", $2.number, 1,
			    CONFIG_MAX_WORKERS))
				conf->prefork = (int)$2.number;
		}
		| KEYHOLDERS NUMBER		{
			if (parse_once(&seen.keyholders, "keyholders") &&
			    parse_range("keyholders", $2.number, 1,
			    CONFIG_MAX_WORKERS))
				conf->keyholders = (int)$2.number;
		}
		| USER STRING			{
			parse_string(&conf->user, &seen.user, "user",
			    $2.string);
		}
		| CHROOT STRING			{
			if ($2.string[0] != '/')
				yyerror("chroot \"%s\": not an absolute path",
				    $2.string);
			else
				parse_string(&conf->chroot, &seen.chroot,
				    "chroot", $2.string);
		}
		| DATABASE STRING		{
			/* a PostgreSQL URI, or a SQLite path */
			if (store_backend_is_uri($2.string))
				parse_string(&conf->database, &seen.database,
				    "database", $2.string);
			else
				parse_pathset(&conf->database, &seen.database,
				    "database", $2.string);
		}
		| PIDFILE STRING		{
			parse_pathset(&conf->pidfile, &seen.pidfile,
			    "pidfile", $2.string);
		}
		| TIMEOUT REQUEST NUMBER	{
			if (parse_once(&seen.timeout_request,
			    "timeout request") &&
			    parse_range("timeout request", $3.number, 1, 3600))
				conf->timeout_request = (int)$3.number;
		}
		| TIMEOUT IDLE NUMBER		{
			if (parse_once(&seen.timeout_idle, "timeout idle") &&
			    parse_range("timeout idle", $3.number, 1, 86400))
				conf->timeout_idle = (int)$3.number;
		}
		| TIMEOUT HANDSHAKE NUMBER	{
			if (parse_once(&seen.timeout_handshake,
			    "timeout handshake") &&
			    parse_range("timeout handshake", $3.number, 1,
			    3600))
				conf->timeout_handshake = (int)$3.number;
		}
		| TIMEOUT OCSP NUMBER		{
			if (parse_once(&seen.timeout_ocsp, "timeout ocsp") &&
			    parse_range("timeout ocsp", $3.number, 1, 60))
				conf->timeout_ocsp = (int)$3.number;
		}
		| MAXIMUM CONNECTIONS NUMBER	{
			if (parse_once(&seen.max_connections,
			    "max connections") &&
			    parse_range("max connections", $3.number, 1,
			    100000))
				conf->max_connections = (int)$3.number;
		}
		| MAXIMUM SIGNATURES NUMBER	{
			if (parse_once(&seen.max_signatures,
			    "max signatures") &&
			    parse_range("max signatures", $3.number, 1,
			    1000000))
				conf->max_signatures = (int)$3.number;
		}
		| EXPIRY WARNING NUMBER		{
			if (parse_once(&seen.expiry, "expiry warning") &&
			    parse_range("expiry warning", $3.number, 0, 3650))
				conf->expiry_warn_days = (int)$3.number;
		}
		| CACHE SIZE value		{
			if (parse_once(&seen.cache_size, "cache size"))
				parse_size("cache size", $3.string,
				    &conf->cache_size);
		}
		;

tls		: TLS '{' optnl tlsopts_l '}'	{
			if (seen.tls == 0)
				seen.tls = $1.lineno;
		}
		| TLS '{' optnl tlsopts_l tlsopt '}'	{
			if (seen.tls == 0)
				seen.tls = $1.lineno;
		}
		;

tlsopts_l	: /* empty */
		| tlsopts_l tlsopt nl
		| tlsopts_l error nl		{ yyerrok; }
		;

tlsopt		: CERTIFICATE STRING		{
			parse_pathset(&conf->tls.cert, NULL, "certificate",
			    $2.string);
		}
		| KEY STRING			{
			/* An RFC 7512 URI names a key in a PKCS#11 token. */
			if (strncmp($2.string, "pkcs11:", 7) == 0)
				parse_string(&conf->tls.key, NULL, "key",
				    $2.string);
			else
				parse_pathset(&conf->tls.key, NULL, "key",
				    $2.string);
		}
		| PIN STRING			{
			parse_pathset(&conf->tls.pin, NULL, "pin", $2.string);
		}
		| PKCS11 MODULE STRING		{
			parse_pathset(&conf->tls.p11module, NULL,
			    "pkcs11 module", $3.string);
		}
		| CLIENT CA STRING		{
			parse_pathset(&conf->tls.ca, NULL, "client ca",
			    $3.string);
		}
		| CRL STRING			{
			parse_pathset(&conf->tls.crl, NULL, "crl", $2.string);
		}
		| CLIENT OCSP REQUIRE		{
			if (parse_once(&seen.client_ocsp, "client ocsp"))
				conf->tls.client_ocsp = CONFIG_OCSP_REQUIRE;
		}
		| CLIENT OCSP PREFER		{
			if (parse_once(&seen.client_ocsp, "client ocsp"))
				conf->tls.client_ocsp = CONFIG_OCSP_PREFER;
		}
		| CLIENT OCSP URL STRING	{
			/* check.c checks it, as it checks the files */
			parse_string(&conf->tls.client_ocsp_url,
			    &seen.client_ocsp_url, "client ocsp url",
			    $4.string);
		}
		| CRL URL STRING REFRESH NUMBER	{
			char	 uerr[256];

			if (!parse_once(&seen.crlurl, "crl url"))
				;
			else if (!fetch_url_ok($3.string, uerr, sizeof(uerr)))
				yyerror("crl url %s", uerr);
			else if ($5.number < 1 || $5.number > 7 * 86400)
				yyerror("crl url refresh %lld: out of range "
				    "(1-604800 seconds)", $5.number);
			else {
				parse_string(&conf->tls.crl_url, NULL,
				    "crl url", $3.string);
				conf->tls.crl_refresh = (int)$5.number;
			}
		}
		| OCSP STAPLE STRING		{
			parse_pathset(&conf->tls.staple, &seen.staple,
			    "ocsp staple", $3.string);
		}
		| OCSP STAPLE AUTO		{
			if (parse_once(&seen.staple, "ocsp staple")) {
				conf->tls.staple_auto = 1;
				parse_origin("ocsp staple");
			}
		}
		| OCSP URL STRING		{
			char	 uerr[256];

			if (!fetch_url_ok($3.string, uerr, sizeof(uerr)))
				yyerror("ocsp url %s", uerr);
			else
				parse_string(&conf->tls.staple_url,
				    &seen.stapleurl, "ocsp url", $3.string);
		}
		| PROTOCOLS STRING		{
			if (parse_once(&seen.protocols, "protocols"))
				parse_protocols($2.string);
		}
		| CIPHERS STRING		{
			if (parse_once(&seen.ciphers, "ciphers"))
				parse_ciphers($2.string);
		}
		| TICKET LIFETIME NUMBER	{
			if (!parse_once(&seen.ticket, "ticket lifetime"))
				;
			else if ($3.number != 0 &&
			    ($3.number < 240 || $3.number > 86400))
				yyerror("ticket lifetime %lld: out of range "
				    "(0 or 240-86400)", $3.number);
			else
				conf->tls.ticket_lifetime = (int)$3.number;
		}
		;

allow		: ALLOW				{ parse_rule_begin($1.lineno); }
		    classes FROM conds ruleopts	{
			if (cur_rule != NULL)
				cur_rule->classes = (uint32_t)$3.number;
			parse_rule_end();
		}
		;

classes		: class				{ $$.number = $1.number; }
		| '{' classlist '}'		{ $$.number = $2.number; }
		;

classlist	: class				{ $$.number = $1.number; }
		| classlist comma class		{
			$$.number = $1.number | $3.number;
		}
		;

class		: READ				{ $$.number = AUTHZ_READ; }
		| WRITE				{ $$.number = AUTHZ_WRITE; }
		| METRICS			{ $$.number = AUTHZ_METRICS; }
		| ALL				{ $$.number = AUTHZ_ALL; }
		;

conds		: cond
		| conds cond
		;

cond		: ANY			{ parse_rule_cond(MATCH_ANY, NULL); }
		| CN STRING		{
			parse_rule_cond(MATCH_CN, $2.string);
		}
		| OU STRING		{
			parse_rule_cond(MATCH_OU, $2.string);
		}
		| FINGERPRINT STRING	{
			parse_rule_cond(MATCH_FINGERPRINT, $2.string);
		}
		| SAN DNS STRING	{
			parse_rule_cond(MATCH_SAN_DNS, $3.string);
		}
		| SAN URI STRING	{
			parse_rule_cond(MATCH_SAN_URI, $3.string);
		}
		| SAN IP STRING		{
			parse_rule_cond(MATCH_SAN_IP, $3.string);
		}
		| SAN EMAIL STRING	{
			parse_rule_cond(MATCH_SAN_EMAIL, $3.string);
		}
		;

ruleopts	: /* empty */
		| ruleopts ruleopt
		;

ruleopt		: METHOD methods	{
			parse_rule_methods((uint32_t)$2.number);
		}
		| PATH STRING		{ parse_rule_path($2.string); }
		;

methods		: method			{ $$.number = $1.number; }
		| '{' methodlist '}'		{ $$.number = $2.number; }
		;

methodlist	: method			{ $$.number = $1.number; }
		| methodlist comma method	{
			$$.number = $1.number | $3.number;
		}
		;

method		: STRING		{ $$.number = parse_method($1.string); }
		;

%%

struct parse_keyword {
	const char	*name;
	int		 token;
};

/* Sorted for bsearch. */
static const struct parse_keyword keywords[] = {
	{ "all",		ALL },
	{ "allow",		ALLOW },
	{ "any",		ANY },
	{ "auto",		AUTO },
	{ "ca",			CA },
	{ "cache",		CACHE },
	{ "certificate",	CERTIFICATE },
	{ "chroot",		CHROOT },
	{ "ciphers",		CIPHERS },
	{ "client",		CLIENT },
	{ "cn",			CN },
	{ "connections",	CONNECTIONS },
	{ "crl",		CRL },
	{ "database",		DATABASE },
	{ "dns",		DNS },
	{ "email",		EMAIL },
	{ "expiry",		EXPIRY },
	{ "fingerprint",	FINGERPRINT },
	{ "from",		FROM },
	{ "handshake",		HANDSHAKE },
	{ "idle",		IDLE },
	{ "include",		INCLUDE },
	{ "ip",			IP },
	{ "key",		KEY },
	{ "keyholders",		KEYHOLDERS },
	{ "lifetime",		LIFETIME },
	{ "listen",		LISTEN },
	{ "max",		MAXIMUM },
	{ "method",		METHOD },
	{ "metrics",		METRICS },
	{ "module",		MODULE },
	{ "ocsp",		OCSP },
	{ "on",			ON },
	{ "ou",			OU },
	{ "path",		PATH },
	{ "pidfile",		PIDFILE },
	{ "pin",		PIN },
	{ "pkcs11",		PKCS11 },
	{ "port",		PORT },
	{ "prefer",		PREFER },
	{ "prefork",		PREFORK },
	{ "protocols",		PROTOCOLS },
	{ "read",		READ },
	{ "refresh",		REFRESH },
	{ "request",		REQUEST },
	{ "require",		REQUIRE },
	{ "san",		SAN },
	{ "signatures",		SIGNATURES },
	{ "size",		SIZE },
	{ "staple",		STAPLE },
	{ "ticket",		TICKET },
	{ "timeout",		TIMEOUT },
	{ "tls",		TLS },
	{ "uri",		URI },
	{ "url",		URL },
	{ "user",		USER },
	{ "warning",		WARNING },
	{ "write",		WRITE }
};

static int
kw_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct parse_keyword *)e)->name);
}

static int
kw_lookup(const char *s)
{
	const struct parse_keyword	*kw;

	kw = bsearch(s, keywords, sizeof(keywords) / sizeof(keywords[0]),
	    sizeof(keywords[0]), kw_cmp);
	return kw != NULL ? kw->token : STRING;
}

/*
 * Every error goes to the log; the first one also to the caller's buffer,
 * which the daemon prints after "reload failed: ".
 */
static void
parse_report(const char *name, int line, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s:%d: %s", name, line, msg);
	if (errors++ == 0 && errbuf != NULL && errbuflen > 0)
		snprintf(errbuf, errbuflen, "%s:%d: %s", name, line, msg);
}

static int
yyerror(const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[1024];

	/* The lexer has already said what was wrong with this token. */
	if (lexer_failed && strcmp(fmt, "syntax error") == 0) {
		lexer_failed = 0;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(fmt, "syntax error") == 0) {
		/* Say where: the token the grammar did not expect. */
		if (lasttok == 0)
			strlcat(msg, " at end of file", sizeof(msg));
		else if (lasttok == '\n')
			strlcat(msg, " at end of line", sizeof(msg));
		else if (yylval.string != NULL)
			snprintf(msg, sizeof(msg),
			    "syntax error near \"%.64s%s\"", yylval.string,
			    strlen(yylval.string) > 64 ? "..." : "");
		else if (lasttok > 0 && lasttok < 0x80)
			snprintf(msg, sizeof(msg), "syntax error near '%c'",
			    lasttok);
	}
	parse_report(file != NULL ? file->name : top_name, yylval.lineno,
	    "%s", msg);
	return 0;
}

static char *
arena_keep(char *s)
{
	char	**na;
	size_t	  ns;

	if (s == NULL)
		return NULL;
	if (narena == arenasize) {
		ns = arenasize ? arenasize * 2 : 64;
		if ((na = reallocarray(arena, ns, sizeof(*na))) == NULL) {
			free(s);
			return NULL;
		}
		arena = na;
		arenasize = ns;
	}
	arena[narena++] = s;
	return s;
}

static void
arena_free(void)
{
	size_t	 i;

	for (i = 0; i < narena; i++)
		free(arena[i]);
	free(arena);
	arena = NULL;
	narena = arenasize = 0;
}

/*
 * Read one character.  Backslash-newline outside quotes joins lines.
 * quoted: the string reader handles backslashes itself.
 */
static int
lgetc(int quoted)
{
	int	 c, next;

	if (file == NULL)
		return EOF;
	for (;;) {
		if (file->npb > 0) {
			c = file->pb[--file->npb];
			if (c == PARSE_START_EXPAND) {
				file->expanding++;
				continue;
			}
			if (c == PARSE_DONE_EXPAND) {
				if (file->expanding > 0)
					file->expanding--;
				continue;
			}
			return c;
		}
		if (file->eof)
			return EOF;
		if ((c = getc(file->stream)) == EOF) {
			file->eof = 1;
			return EOF;
		}
		file->lastc = c;
		if (quoted || c != '\\')
			return c;
		if ((next = getc(file->stream)) == EOF) {
			file->eof = 1;
			return c;
		}
		file->lastc = next;
		if (next != '\n') {
			lungetc(next);
			return c;
		}
		file->lineno++;
	}
}

static int
lungetc(int c)
{
	int	*np;
	size_t	 ns;

	if (c == EOF || file == NULL)
		return c;
	if (file->npb == file->pbsize) {
		if (file->pbsize >= PARSE_MAX_PUSHBACK)
			return EOF;
		ns = file->pbsize ? file->pbsize * 2 : 64;
		if ((np = reallocarray(file->pb, ns, sizeof(*np))) == NULL)
			return EOF;
		file->pb = np;
		file->pbsize = ns;
	}
	file->pb[file->npb++] = c;
	return c;
}

/* Skip the rest of the line; the newline is left to end the statement. */
static int
findeol(void)
{
	int	 c;

	while ((c = lgetc(0)) != EOF) {
		if (c == '\n') {
			lungetc(c);
			break;
		}
	}
	lexer_failed = 1;
	return ERROR;
}

static int
lexerror(const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	parse_report(file->name, file->lineno, "%s", msg);
	return findeol();
}

static int
is_number(const char *s)
{
	if (*s == '-')
		s++;
	return *s != '\0' && s[strspn(s, "0123456789")] == '\0';
}

static int
word_char(int c)
{
	if (c == EOF)
		return 0;
	return isalnum(c) || strchr("-_.:*/@+%~[]$", c) != NULL;
}

/* Expand $name at the start of a token by pushing its value back. */
static int
lex_macro(void)
{
	struct parse_macro	*m;
	char			 name[128];
	size_t			 n = 0, i;
	int			 c;

	while ((c = lgetc(0)) != EOF && (isalnum(c) || c == '_')) {
		if (n >= sizeof(name) - 1)
			return lexerror("macro name too long");
		name[n++] = c;
	}
	lungetc(c);
	name[n] = '\0';
	if (n == 0)
		return lexerror("'$' without a macro name");
	if ((m = macro_find(name)) == NULL)
		return lexerror("unknown macro $%s", name);
	if (file->npb + strlen(m->value) + 2 > PARSE_MAX_PUSHBACK)
		return lexerror("macro $%s: expansion too long", name);
	lungetc(PARSE_DONE_EXPAND);
	for (i = strlen(m->value); i > 0; i--)
		lungetc((unsigned char)m->value[i - 1]);
	lungetc(PARSE_START_EXPAND);
	return 0;
}

static int
lex_string(int quotec)
{
	char	 buf[PARSE_MAX_STRING];
	size_t	 n = 0;
	int	 c, next;

	for (;;) {
		c = lgetc(1);
		if (c == EOF || c == '\n') {
			lungetc(c);
			return lexerror("unterminated string");
		}
		if (c == quotec)
			break;
		if (c == '\\') {
			next = lgetc(1);
			if (next == '\n') {
				file->lineno++;
				continue;
			}
			if (next == quotec || next == '\\')
				c = next;
			else
				lungetc(next);
		} else if (c == '\0' || c == 0x7f || (c < 0x20 && c != '\t'))
			return lexerror("invalid character 0x%02x in string",
			    c);
		if (n >= sizeof(buf) - 1)
			return lexerror("string too long");
		buf[n++] = c;
	}
	buf[n] = '\0';
	if ((yylval.string = arena_keep(strdup(buf))) == NULL)
		return lexerror("out of memory");
	return STRING;
}

/*
 * A word: a keyword, a number, a macro name (when '=' follows it at the
 * start of a line) or a bare string.
 */
static int
lex_word(int c)
{
	char		 buf[PARSE_MAX_STRING];
	const char	*errstr;
	size_t		 n = 0;
	int		 stmt_start, tok, d;

	stmt_start = lasttok == 0 || lasttok == '\n';
	do {
		if (n >= sizeof(buf) - 1)
			return lexerror("word too long");
		buf[n++] = c;
	} while (word_char(c = lgetc(0)));
	lungetc(c);
	buf[n] = '\0';
	if ((yylval.string = arena_keep(strdup(buf))) == NULL)
		return lexerror("out of memory");

	if (is_number(buf)) {
		yylval.number = strtonum(buf, LLONG_MIN, LLONG_MAX, &errstr);
		if (errstr != NULL)
			return lexerror("number %s is %s", buf, errstr);
		return NUMBER;
	}
	if (stmt_start) {
		/* "name = value" defines a macro, even named like a keyword. */
		while ((d = lgetc(0)) == ' ' || d == '\t')
			;
		lungetc(d);
		if (d == '=')
			return STRING;
	}
	tok = kw_lookup(buf);
	if (tok == STRING && stmt_start)
		return lexerror("unknown keyword \"%s\"", buf);
	return tok;
}

static int
yylex_token(void)
{
	int	 c;

 top:
	while ((c = lgetc(0)) == ' ' || c == '\t')
		;
	yylval.lineno = file->lineno;
	yylval.string = NULL;
	yylval.number = 0;
	if (c == '#')
		while ((c = lgetc(0)) != '\n' && c != EOF)
			;
	if (c == '$' && file->expanding == 0) {
		if (lex_macro() == ERROR)
			return ERROR;
		goto top;
	}
	switch (c) {
	case '"':
	case '\'':
		return lex_string(c);
	case '\n':
		file->lineno++;
		return '\n';
	case EOF:
		if (lasttok != '\n' && lasttok != 0)
			return '\n';
		if (popfile() == EOF) {
			yylval.lineno = top_eofline;
			return 0;
		}
		goto top;
	case '{':
	case '}':
	case ',':
	case '=':
		return c;
	}
	if (word_char(c))
		return lex_word(c);
	if (isprint(c))
		return lexerror("unexpected character '%c'", c);
	return lexerror("unexpected character 0x%02x", c);
}

static int
yylex(void)
{
	int	 tok;

	lexer_failed = 0;
	if (file == NULL)
		return 0;
	tok = yylex_token();
	lasttok = tok;
	return tok;
}

static void
file_free(struct parse_file *f)
{
	if (f->stream != NULL)
		fclose(f->stream);
	free(f->name);
	free(f->pb);
	free(f);
}

/*
 * Open a file and make it the one the lexer reads.  include: refuse what
 * is not a regular file, loops and runaway nesting.
 */
static struct parse_file *
pushfile(const char *name, int include)
{
	struct parse_file	*f, *p;
	struct stat		 st;
	int			 depth = 0, saved, fd = -1;

	if (nopened >= PARSE_MAX_FILES) {
		yyerror("include %s: too many files", name);
		return NULL;
	}
	TAILQ_FOREACH(p, &files, entry)
		depth++;
	if (depth >= PARSE_MAX_DEPTH) {
		yyerror("include %s: nested too deeply", name);
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->name = strdup(name)) == NULL) {
		free(f);
		yyerror("out of memory");
		return NULL;
	}
	/*
	 * An include is opened non-blocking: a pseudo-file that would wait
	 * for data reads as empty instead of hanging the parse.
	 */
	if ((fd = open(name, O_RDONLY | O_CLOEXEC |
	    (include ? O_NONBLOCK : 0))) == -1 ||
	    (f->stream = fdopen(fd, "r")) == NULL ||
	    fstat(fileno(f->stream), &st) == -1) {
		saved = errno;
		if (fd != -1 && f->stream == NULL)
			close(fd);
		if (include)
			yyerror("include %s: %s", name, strerror(saved));
		file_free(f);
		errno = saved;
		return NULL;
	}
	if (include && !S_ISREG(st.st_mode)) {
		yyerror("include %s: not a regular file", name);
		file_free(f);
		return NULL;
	}
	TAILQ_FOREACH(p, &files, entry) {
		if (include && p->dev == st.st_dev && p->ino == st.st_ino) {
			yyerror("include %s: includes itself", name);
			file_free(f);
			return NULL;
		}
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->lineno = 1;
	f->lastc = '\n';
	nopened++;
	TAILQ_INSERT_TAIL(&files, f, entry);
	file = f;
	return f;
}

/* Back to the including file at the end of an include; EOF at the end. */
static int
popfile(void)
{
	struct parse_file	*prev;

	if (file == NULL)
		return EOF;
	prev = TAILQ_PREV(file, parse_files, entry);
	if (prev == NULL) {
		top_eofline = file->lastc == '\n' && file->lineno > 1 ?
		    file->lineno - 1 : file->lineno;
		return EOF;
	}
	TAILQ_REMOVE(&files, file, entry);
	file_free(file);
	file = prev;
	return 0;
}

static struct parse_macro *
macro_find(const char *name)
{
	struct parse_macro	*m;

	TAILQ_FOREACH(m, &macros, entry)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static int
macro_name_ok(const char *name)
{
	const char	*p;

	if (*name == '\0' || isdigit((unsigned char)*name))
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return 0;
	return p - name < 128;
}

/* A -D macro overrides a definition of the same name in the file. */
static int
macro_set(const char *name, const char *value, int cmdline)
{
	struct parse_macro	*m;
	char			*v;

	if ((m = macro_find(name)) != NULL) {
		if (m->cmdline && !cmdline)
			return 0;
		if ((v = strdup(value)) == NULL)
			return -1;
		free(m->value);
		m->value = v;
		m->cmdline = cmdline;
		return 0;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->name = strdup(name)) == NULL ||
	    (m->value = strdup(value)) == NULL) {
		if (m != NULL)
			free(m->name);
		free(m);
		return -1;
	}
	m->cmdline = cmdline;
	TAILQ_INSERT_TAIL(&macros, m, entry);
	return 0;
}

static void
macro_define(const char *name, const char *value)
{
	if (!macro_name_ok(name))
		yyerror("invalid macro name \"%s\"", name);
	else if (strlen(value) >= PARSE_MAX_STRING)
		yyerror("macro %s: value too long", name);
	else if (macro_set(name, value, 0) == -1)
		yyerror("out of memory");
}

static void
macros_clear_file(void)
{
	struct parse_macro	*m, *next;

	for (m = TAILQ_FIRST(&macros); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (m->cmdline)
			continue;
		TAILQ_REMOVE(&macros, m, entry);
		free(m->name);
		free(m->value);
		free(m);
	}
}

int
config_define(const char *def)
{
	const char	*eq;
	char		*name;
	int		 rv;

	if ((eq = strchr(def, '=')) == NULL) {
		log_warnx("macro definition \"%s\": expected name=value", def);
		errno = EINVAL;
		return -1;
	}
	if ((name = strndup(def, eq - def)) == NULL)
		return -1;
	if (!macro_name_ok(name) || strlen(eq + 1) >= PARSE_MAX_STRING) {
		log_warnx("macro definition \"%s\": invalid name or value",
		    def);
		free(name);
		errno = EINVAL;
		return -1;
	}
	rv = macro_set(name, eq + 1, 1);
	free(name);
	return rv;
}

/* Settings given twice are a mistake: say where. */
static int
parse_once(int *line, const char *what)
{
	if (*line != 0) {
		yyerror("%s already set on line %d", what, *line);
		return 0;
	}
	*line = yylval.lineno > 0 ? yylval.lineno : 1;
	return 1;
}

/* A size in bytes, with an optional unit: 4096, 512K, 64M, 1G. */
static void
parse_size(const char *what, const char *s, uint64_t *out)
{
	uint64_t	 v;

	if (expand_number(s, &v) == -1) {
		yyerror("%s %s: not a size (a number of bytes, or with K, M "
		    "or G)", what, s);
		return;
	}
	if (v > CONFIG_MAX_CACHE) {
		yyerror("%s %s: out of range (0-%lluG)", what, s,
		    (unsigned long long)(CONFIG_MAX_CACHE >> 30));
		return;
	}
	*out = v;
}

static int
parse_range(const char *what, long long v, long long lo, long long hi)
{
	if (v < lo || v > hi) {
		yyerror("%s %lld: out of range (%lld-%lld)", what, v, lo, hi);
		return 0;
	}
	return 1;
}

/* Relative paths are relative to the configuration file's directory. */
static char *
parse_path(const char *what, const char *s)
{
	char	*p;

	if (*s == '\0') {
		yyerror("%s: empty path", what);
		return NULL;
	}
	if (*s == '/')
		p = strdup(s);
	else if (asprintf(&p, "%s/%s", conf_dir, s) == -1)
		p = NULL;
	if (p == NULL)
		yyerror("out of memory");
	return p;
}

static void
parse_string(char **dst, int *line, const char *what, const char *s)
{
	char	*p;

	if (line != NULL && !parse_once(line, what))
		return;
	if (line == NULL && *dst != NULL) {
		yyerror("%s already set", what);
		return;
	}
	if (*s == '\0') {
		yyerror("%s: empty value", what);
		return;
	}
	if ((p = strdup(s)) == NULL) {
		yyerror("out of memory");
		return;
	}
	free(*dst);
	*dst = p;
	parse_origin(what);
}

/* Where a file setting was made, for the checks' messages. */
static void
parse_origin(const char *what)
{
	config_origin_add(conf, what, file != NULL ? file->name : top_name,
	    yylval.lineno > 0 ? yylval.lineno : 1);
}

static void
parse_pathset(char **dst, int *line, const char *what, const char *s)
{
	char	*p;

	if (line != NULL && !parse_once(line, what))
		return;
	if (line == NULL && *dst != NULL) {
		yyerror("%s already set", what);
		return;
	}
	if ((p = parse_path(what, s)) == NULL)
		return;
	free(*dst);
	*dst = p;
	parse_origin(what);
}

static void
parse_include(const char *s)
{
	char	*p;

	if ((p = parse_path("include", s)) == NULL)
		return;
	if (pushfile(p, 1) != NULL) {
		/* The included file's first token ends the include line. */
		lungetc('\n');
		file->lineno = 0;
	}
	free(p);
}

/* Returns the port, or 0 after reporting an error. */
static int
parse_port(const char *s, long long n)
{
	struct servent	*se;
	const char	*errstr;

	if (s == NULL) {
		if (n < 1 || n > 65535) {
			yyerror("port %lld: out of range (1-65535)", n);
			return 0;
		}
		return (int)n;
	}
	n = strtonum(s, 1, 65535, &errstr);
	if (errstr == NULL)
		return (int)n;
	if ((se = getservbyname(s, "tcp")) == NULL) {
		yyerror("port \"%s\": unknown service", s);
		return 0;
	}
	return ntohs(se->s_port);
}

static int
listen_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b,
    int *overlap)
{
	const struct sockaddr_in	*a4 = (const void *)a;
	const struct sockaddr_in	*b4 = (const void *)b;
	const struct sockaddr_in6	*a6 = (const void *)a;
	const struct sockaddr_in6	*b6 = (const void *)b;

	*overlap = 0;
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		if (a4->sin_port != b4->sin_port)
			return 0;
		if (a4->sin_addr.s_addr == b4->sin_addr.s_addr)
			return 1;
		*overlap = a4->sin_addr.s_addr == htonl(INADDR_ANY) ||
		    b4->sin_addr.s_addr == htonl(INADDR_ANY);
		return 0;
	}
	if (a6->sin6_port != b6->sin6_port)
		return 0;
	if (memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0 &&
	    a6->sin6_scope_id == b6->sin6_scope_id)
		return 1;
	*overlap = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr) ||
	    IN6_IS_ADDR_UNSPECIFIED(&b6->sin6_addr);
	return 0;
}

static void
listen_add(const struct sockaddr *sa, socklen_t salen, int port, int line)
{
	struct config_listen	*l, *o;
	char			 host[NI_MAXHOST];
	int			 overlap, i;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		yyerror("out of memory");
		return;
	}
	memcpy(&l->ss, sa, salen);
	l->sslen = salen;
	for (i = 0; i < CONFIG_MAX_WORKERS; i++)
		l->fds[i] = -1;
	l->lineno = line;
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)&l->ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&l->ss)->sin6_port = htons(port);
	if (getnameinfo((struct sockaddr *)&l->ss, l->sslen, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		strlcpy(host, "?", sizeof(host));
	snprintf(l->name, sizeof(l->name), sa->sa_family == AF_INET6 ?
	    "[%s]:%d" : "%s:%d", host, port);
	TAILQ_FOREACH(o, &conf->listens, entry) {
		if (listen_same(&o->ss, &l->ss, &overlap)) {
			/* A name with several equal addresses is one. */
			if (o->lineno != line)
				yyerror("listen on %s: duplicate of line %d",
				    l->name, o->lineno);
			free(l);
			return;
		}
		if (overlap) {
			yyerror("listen on %s: overlaps %s on line %d",
			    l->name, o->name, o->lineno);
			free(l);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&conf->listens, l, entry);
}

static void
parse_listen(const char *host, int port)
{
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	char			*h = NULL;
	size_t			 len;
	int			 line = yylval.lineno, rv;

	if (strcmp(host, "*") == 0) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		listen_add((struct sockaddr *)&sin, sizeof(sin), port, line);
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_any;
		listen_add((struct sockaddr *)&sin6, sizeof(sin6), port, line);
		return;
	}
	/* "[::1]" as in URLs. */
	len = strlen(host);
	if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
		if ((h = strndup(host + 1, len - 2)) == NULL) {
			yyerror("out of memory");
			return;
		}
		host = h;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICHOST;
	rv = getaddrinfo(host, NULL, &hints, &res);
	if (rv == EAI_NONAME) {
		hints.ai_flags = 0;
		rv = getaddrinfo(host, NULL, &hints, &res);
	}
	if (rv != 0) {
		yyerror("listen on %s: %s", host, gai_strerror(rv));
		free(h);
		return;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(struct sockaddr_storage))
			continue;
		listen_add(ai->ai_addr, ai->ai_addrlen, port, line);
	}
	freeaddrinfo(res);
	free(h);
}

static void
parse_protocols(const char *s)
{
	uint32_t	 mask;
	char		*p;

	if (tls_config_parse_protocols(&mask, s) == -1 || mask == 0) {
		yyerror("protocols \"%s\": invalid", s);
		return;
	}
	/* their MD5+SHA-1 signatures are not something the keyholder makes */
	if (mask & ~(TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3)) {
		yyerror("protocols \"%s\": only tlsv1.2 and tlsv1.3 are "
		    "supported", s);
		return;
	}
	if ((p = strdup(s)) == NULL) {
		yyerror("out of memory");
		return;
	}
	free(conf->tls.protocols);
	conf->tls.protocols = p;
	conf->tls.protocols_mask = mask;
}

/* Let libtls judge the cipher string now rather than at startup. */
static void
parse_ciphers(const char *s)
{
	struct tls_config	*tc;
	char			*p;

	if ((tc = tls_config_new()) == NULL) {
		yyerror("ciphers: cannot initialise libtls");
		return;
	}
	if (tls_config_set_ciphers(tc, s) == -1) {
		yyerror("ciphers \"%s\": %s", s, tls_config_error(tc) ?
		    tls_config_error(tc) : "invalid");
		tls_config_free(tc);
		return;
	}
	tls_config_free(tc);
	if ((p = strdup(s)) == NULL) {
		yyerror("out of memory");
		return;
	}
	free(conf->tls.ciphers);
	conf->tls.ciphers = p;
}

static void
parse_rule_begin(int line)
{
	authz_rule_free(cur_rule);
	cur_rule_bad = 0;
	if ((cur_rule = authz_rule_new()) == NULL) {
		yyerror("out of memory");
		return;
	}
	cur_rule->lineno = line;
}

static void
parse_rule_cond(enum authz_match type, const char *value)
{
	char	 err[256];

	if (cur_rule == NULL)
		return;
	if (cur_rule->nconds >= AUTHZ_MAX_CONDS) {
		if (cur_rule_bad++ == 0 || cur_rule->nconds == AUTHZ_MAX_CONDS)
			yyerror("too many conditions (at most %d)",
			    AUTHZ_MAX_CONDS);
		cur_rule->nconds++;
		return;
	}
	if (authz_cond_set(&cur_rule->conds[cur_rule->nconds], type, value,
	    err, sizeof(err)) == -1) {
		yyerror("%s", err);
		cur_rule_bad++;
		return;
	}
	cur_rule->nconds++;
}

static uint32_t
parse_method(const char *s)
{
	if (strcmp(s, "GET") == 0)
		return AUTHZ_M_GET;
	if (strcmp(s, "POST") == 0)
		return AUTHZ_M_POST;
	if (strcmp(s, "PATCH") == 0)
		return AUTHZ_M_PATCH;
	if (strcmp(s, "DELETE") == 0)
		return AUTHZ_M_DELETE;
	yyerror("method \"%s\": expected GET, POST, PATCH or DELETE", s);
	cur_rule_bad++;
	return 0;
}

static void
parse_rule_methods(uint32_t m)
{
	if (cur_rule == NULL)
		return;
	if (cur_rule->methods != 0) {
		yyerror("method given twice");
		cur_rule_bad++;
		return;
	}
	cur_rule->methods = m;
}

static void
parse_rule_path(const char *s)
{
	if (cur_rule == NULL)
		return;
	if (cur_rule->path != NULL) {
		yyerror("path given twice");
		cur_rule_bad++;
		return;
	}
	if (s[0] != '/') {
		yyerror("path \"%s\": must start with '/'", s);
		cur_rule_bad++;
		return;
	}
	if ((cur_rule->path = strdup(s)) == NULL) {
		yyerror("out of memory");
		cur_rule_bad++;
	}
}

static void
parse_rule_end(void)
{
	int	 i;

	if (cur_rule == NULL)
		return;
	if (cur_rule->nconds > AUTHZ_MAX_CONDS)
		cur_rule->nconds = AUTHZ_MAX_CONDS;
	for (i = 0; i < cur_rule->nconds && cur_rule_bad == 0; i++) {
		if (cur_rule->conds[i].type == MATCH_ANY &&
		    cur_rule->nconds > 1) {
			yyerror("\"any\" cannot be combined with other "
			    "conditions");
			cur_rule_bad++;
		}
	}
	if (cur_rule_bad) {
		authz_rule_free(cur_rule);
		cur_rule = NULL;
		return;
	}
	TAILQ_INSERT_TAIL(&conf->rules, cur_rule, entry);
	cur_rule = NULL;
}

static int
parse_default(char **dst, const char *def)
{
	if (*dst != NULL)
		return 0;
	if ((*dst = strdup(def)) == NULL) {
		parse_report(top_name, top_eofline, "out of memory");
		return -1;
	}
	return 0;
}

/* Whole-file checks and defaults, once every line has been read. */
static void
parse_finish(void)
{
	long	 ncpu;

	if (seen.listen == 0)
		parse_report(top_name, top_eofline,
		    "no listen address (listen on ADDRESS port PORT)");
	if (seen.tls == 0)
		parse_report(top_name, top_eofline, "missing tls block");
	else {
		if (conf->tls.cert == NULL)
			parse_report(top_name, seen.tls,
			    "tls block: missing certificate");
		if (conf->tls.key == NULL)
			parse_report(top_name, seen.tls,
			    "tls block: missing key");
		if (conf->tls.ca == NULL)
			parse_report(top_name, seen.tls,
			    "tls block: missing client ca");
		if (conf->tls.crl_url != NULL && conf->tls.crl == NULL)
			parse_report(top_name, seen.crlurl,
			    "crl url needs crl \"FILE\": where the last good "
			    "CRL is kept");
		if (conf->tls.staple_url != NULL && !conf->tls.staple_auto)
			parse_report(top_name, seen.stapleurl,
			    "ocsp url is where ocsp staple auto fetches from: "
			    "add ocsp staple auto, or remove it");
	}
	if (conf->prefork == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		conf->prefork = ncpu < 1 ? 1 : ncpu > CONFIG_MAX_WORKERS ?
		    CONFIG_MAX_WORKERS : (int)ncpu;
	}
	if (conf->keyholders == 0)
		conf->keyholders = conf->prefork;
	else if (conf->keyholders > conf->prefork)
		parse_report(top_name, seen.keyholders,
		    "keyholders %d: more than prefork %d", conf->keyholders,
		    conf->prefork);
	if (conf->timeout_request == 0)
		conf->timeout_request = 10;
	if (conf->timeout_idle == 0)
		conf->timeout_idle = 60;
	if (conf->timeout_handshake == 0)
		conf->timeout_handshake = 10;
	if (conf->timeout_ocsp == 0)
		conf->timeout_ocsp = 3;
	if (conf->max_connections == 0)
		conf->max_connections = 1024;
	if (!seen.cache_size)
		conf->cache_size = CONFIG_DEFAULT_CACHE;
	if (conf->max_signatures == 0)
		conf->max_signatures = PROTO_SIGN_RATE;
	if (conf->expiry_warn_days == -1)
		conf->expiry_warn_days = 30;
	if (conf->tls.ticket_lifetime == -1)
		conf->tls.ticket_lifetime = 7200;
	if (conf->tls.protocols == NULL) {
		if (parse_default(&conf->tls.protocols,
		    CONFIG_DEFAULT_PROTOCOLS) == 0)
			conf->tls.protocols_mask = TLS_PROTOCOLS_DEFAULT;
	}
	parse_default(&conf->user, CONFIG_DEFAULT_USER);
	parse_default(&conf->chroot, CONFIG_DEFAULT_CHROOT);
	parse_default(&conf->database, CONFIG_DEFAULT_DB);
}

/* Forget everything a previous (possibly failed) parse left behind. */
static void
parse_reset(void)
{
	struct parse_file	*f;

	while ((f = TAILQ_FIRST(&files)) != NULL) {
		TAILQ_REMOVE(&files, f, entry);
		file_free(f);
	}
	file = NULL;
	macros_clear_file();
	arena_free();
	authz_rule_free(cur_rule);
	cur_rule = NULL;
	cur_rule_bad = 0;
	memset(&seen, 0, sizeof(seen));
	free(conf_dir);
	conf_dir = NULL;
	top_name = NULL;
	top_eofline = 1;
	errbuf = NULL;
	errbuflen = 0;
	errors = 0;
	lasttok = 0;
	lexer_failed = 0;
	nopened = 0;
	conf = NULL;
}

/* The absolute directory of the file and the file's absolute name. */
static int
parse_dirs(const char *path, char **absname)
{
	char		*copy, *slash, *dir;
	const char	*base;

	if ((copy = strdup(path)) == NULL)
		return -1;
	if ((slash = strrchr(copy, '/')) == NULL) {
		dir = ".";
		base = path;
	} else {
		*slash = '\0';
		dir = slash == copy ? "/" : copy;
		base = path + (slash - copy) + 1;
	}
	conf_dir = realpath(dir, NULL);
	free(copy);
	if (conf_dir == NULL)
		return -1;
	if (asprintf(absname, "%s%s%s", conf_dir,
	    strcmp(conf_dir, "/") == 0 ? "" : "/", base) == -1) {
		*absname = NULL;
		return -1;
	}
	return 0;
}

struct config *
config_parse(const char *path, char *err, size_t errlen)
{
	struct config	*c;
	int		 saved;

	parse_reset();
	errbuf = err;
	errbuflen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	top_name = path;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	TAILQ_INIT(&c->listens);
	TAILQ_INIT(&c->rules);
	c->expiry_warn_days = -1;
	c->tls.ticket_lifetime = -1;
	conf = c;

	errno = 0;
	if (pushfile(path, 0) == NULL || parse_dirs(path, &c->path) == -1) {
		saved = errno;
		log_warnx("%s: %s", path, strerror(saved));
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(saved));
		config_free(c);
		parse_reset();
		return NULL;
	}
	yyparse();
	if (top_eofline < 1)
		top_eofline = 1;
	parse_finish();

	if (errors > 0) {
		config_free(c);
		c = NULL;
	}
	parse_reset();
	return c;
}
