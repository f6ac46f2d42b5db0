/*
 * JSON in and out through json-c, made strict.
 *
 * json-c 0.16 in strict mode still accepts NaN, "00", "1.", raw
 * control characters in strings, overlong and surrogate UTF-8, lone
 * \ud800 escapes (turned into U+FFFD) and keys cut at \u0000, and it
 * keeps the last of duplicate keys silently.  So pv_json_parse() runs
 * its own lexer over the text first.  The lexer checks every token,
 * the nesting depth, the container count and what follows the root,
 * and counts the members of each object; json-c then checks the
 * structure and builds the tree.  When both object to something, the
 * earlier byte wins (json-c only sees the text up to the lexer's
 * complaint).  Duplicate keys are found by comparing the lexer's
 * member counts with the tree's, object by object in order of their
 * opening braces: the first object whose tree has fewer members holds
 * a duplicate, and only then are its keys decoded to name it.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pv_json.h"
#include "pv_valid.h"

#define PARSE_FLAGS  (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
#define OUTPUT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
/* Room for a field path while walking the tree; err->field clips it. */
#define PATH_MAX_LEN 128
/* Longest client-chosen key quoted in a message. */
#define KEY_QUOTE_MAX 60
#define STR_(x)       #x
#define STR(x)        STR_(x)
/* How a refusal for depth reads. */
#define TOO_DEEP "has nesting deeper than " STR(PV_JSON_MAX_DEPTH) " levels"

enum lexerr {
	LEX_OK,      /* nothing wrong so far */
	LEX_SYNTAX,  /* not JSON: "is not valid JSON: <why> at byte N" */
	LEX_REFUSED, /* JSON we do not take: "<why> at byte N" */
	LEX_NOTOBJ,  /* the root is not an object */
	LEX_TOOBIG   /* PV_JSON_MAX_CONTAINERS exceeded */
};

struct level {
	size_t obj;   /* document-order index, for objects */
	bool isobj;   /* object rather than array */
	bool wantkey; /* the next string is a member name */
};

struct lex {
	const char *s;  /* the text (borrowed) */
	size_t len;     /* its length */
	size_t pos;     /* next byte to look at */
	size_t *counts; /* members per object, filled if not NULL */
	size_t nobj;    /* objects opened so far */
	size_t ncont;   /* objects and arrays opened so far */
	size_t depth;   /* containers open now */
	struct level stack[PV_JSON_MAX_DEPTH]; /* the open containers */
	bool started;                          /* the root has been opened */
	bool done;                             /* the root has been closed */
	size_t target; /* object whose keys go to onkey */
	int (*onkey)(void *, const char *, size_t); /* non-zero stops */
	void *arg;                                  /* for onkey */
	bool stopped;                               /* onkey asked to stop */
	enum lexerr err;                            /* first problem found */
	const char *why;                            /* what it is */
	size_t errpos;                              /* where it is */
};

struct walk {
	const size_t *counts;       /* from the lexer */
	size_t nobj;                /* entries in counts */
	size_t next;                /* index of the next object in the walk */
	size_t bad;                 /* first object whose count differs */
	struct json_object *badobj; /* that object in the tree */
	char path[PATH_MAX_LEN];    /* field path of badobj */
};

struct dupfind {
	struct pv_arena *arena;  /* for decoded keys */
	struct json_object *obj; /* the object with the duplicate */
	struct pv_err *err;      /* allocation failures */
	const char *key;         /* the first repeated key, once found */
};

static void
put(void *p)
{
	json_object_put(p);
}

static void
lexfail(struct lex *lx, enum lexerr e, size_t pos, const char *why)
{
	if (lx->err != LEX_OK)
		return;
	lx->err = e;
	lx->errpos = pos;
	lx->why = why;
}

/* Value of four hex digits at s[0..4), -1 if not hex, -2 if cut off. */
static long
hex4(const char *s, size_t avail)
{
	long v = 0;
	size_t i;
	char c;

	for (i = 0; i < 4; i++) {
		if (i == avail)
			return -2;
		c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * Checks one escape; lx->pos is at the backslash.  Returns 0 and moves
 * past it, 1 if the text ends inside it, -1 on error.  *nul is set for
 * \u0000.
 */
static int
lex_escape(struct lex *lx, bool *nul)
{
	const char *s = lx->s;
	size_t p = lx->pos + 1;
	long cp, lo;

	if (p >= lx->len)
		return 1;
	if (strchr("\"\\/bfnrt", s[p]) != NULL && s[p] != '\0') {
		lx->pos = p + 1;
		return 0;
	}
	if (s[p] != 'u') {
		lexfail(lx, LEX_SYNTAX, lx->pos, "invalid escape in string");
		return -1;
	}
	if ((cp = hex4(s + p + 1, lx->len - p - 1)) == -2)
		return 1;
	if (cp == -1) {
		lexfail(lx, LEX_SYNTAX, lx->pos, "invalid \\u escape");
		return -1;
	}
	p += 5;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		goto unpaired;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p >= lx->len)
			return 1;
		if (s[p] != '\\')
			goto unpaired;
		if (p + 1 >= lx->len)
			return 1;
		if (s[p + 1] != 'u')
			goto unpaired;
		if ((lo = hex4(s + p + 2, lx->len - p - 2)) == -2)
			return 1;
		if (lo < 0xdc00 || lo > 0xdfff)
			goto unpaired;
		p += 6;
	}
	if (cp == 0)
		*nul = true;
	lx->pos = p;
	return 0;
unpaired:
	lexfail(lx, LEX_SYNTAX, lx->pos,
	    "unpaired UTF-16 surrogate in \\u escape");
	return -1;
}

/* Checks a string token; lx->pos is at its opening quote. */
static void
lex_string(struct lex *lx)
{
	struct level *top = lx->depth > 0 ? &lx->stack[lx->depth - 1] : NULL;
	bool iskey = top != NULL && top->isobj && top->wantkey;
	size_t start = lx->pos, n;
	bool nul = false;
	unsigned char c;
	int rc;

	lx->pos++;
	for (;;) {
		if (lx->pos >= lx->len)
			return; /* json-c reports the end of input */
		c = (unsigned char)lx->s[lx->pos];
		if (c == '"')
			break;
		if (c < 0x20) {
			lexfail(lx, LEX_SYNTAX, lx->pos,
			    "control character in string");
			return;
		}
		if (c == '\\') {
			if ((rc = lex_escape(lx, &nul)) != 0) {
				if (rc == 1)
					lx->pos = lx->len;
				return;
			}
			continue;
		}
		if (c >= 0x80) {
			n = pv_valid_utf8_char(lx->s + lx->pos,
			    lx->len - lx->pos);
			if (n == 0) {
				lexfail(lx, LEX_SYNTAX, lx->pos,
				    "invalid UTF-8");
				return;
			}
			lx->pos += n;
			continue;
		}
		lx->pos++;
	}
	lx->pos++;
	if (!iskey)
		return;
	if (nul) {
		lexfail(lx, LEX_REFUSED, start,
		    "has an object key with \\u0000");
		return;
	}
	top->wantkey = false;
	if (lx->counts != NULL)
		lx->counts[top->obj]++;
	if (lx->onkey != NULL && top->obj == lx->target &&
	    lx->onkey(lx->arg, lx->s + start + 1, lx->pos - start - 2) != 0)
		lx->stopped = true;
}

static bool
isdigit_(char c)
{
	return c >= '0' && c <= '9';
}

static bool
isalpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Checks a number token against RFC 8259's grammar. */
static void
lex_number(struct lex *lx)
{
	const char *s = lx->s;
	size_t p = lx->pos, len = lx->len;

	if (s[p] == '-')
		p++;
	if (p < len && s[p] == '0')
		p++;
	else if (p < len && s[p] >= '1' && s[p] <= '9')
		while (p < len && isdigit_(s[p]))
			p++;
	else if (p < len)
		goto bad;
	if (p < len && s[p] == '.') {
		if (++p < len && !isdigit_(s[p]))
			goto bad;
		while (p < len && isdigit_(s[p]))
			p++;
	}
	if (p < len && (s[p] == 'e' || s[p] == 'E')) {
		if (++p < len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p < len && !isdigit_(s[p]))
			goto bad;
		while (p < len && isdigit_(s[p]))
			p++;
	}
	if (p < len &&
	    (isdigit_(s[p]) || isalpha_(s[p]) || s[p] == '+' || s[p] == '-' ||
	        s[p] == '.'))
		goto bad;
	lx->pos = p;
	return;
bad:
	lexfail(lx, LEX_SYNTAX, lx->pos, "invalid number");
}

/* Checks a word token: true, false or null. */
static void
lex_word(struct lex *lx)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t p = lx->pos, n, i;

	while (p < lx->len && isalpha_(lx->s[p]))
		p++;
	n = p - lx->pos;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strlen(words[i]) == n &&
		    memcmp(words[i], lx->s + lx->pos, n) == 0) {
			lx->pos = p;
			return;
		}
		if (p == lx->len && strlen(words[i]) > n &&
		    memcmp(words[i], lx->s + lx->pos, n) == 0) {
			lx->pos = p; /* cut off: json-c reports the end */
			return;
		}
	}
	lexfail(lx, LEX_SYNTAX, lx->pos, "invalid literal");
}

static void
lex_open(struct lex *lx, bool isobj)
{
	struct level *l;

	if (lx->depth == PV_JSON_MAX_DEPTH) {
		lexfail(lx, LEX_REFUSED, lx->pos, TOO_DEEP);
		return;
	}
	if (lx->ncont == PV_JSON_MAX_CONTAINERS) {
		lexfail(lx, LEX_TOOBIG, lx->pos, NULL);
		return;
	}
	lx->ncont++;
	l = &lx->stack[lx->depth++];
	l->isobj = isobj;
	l->wantkey = isobj;
	l->obj = 0;
	if (isobj) {
		l->obj = lx->nobj++;
		if (lx->counts != NULL)
			lx->counts[l->obj] = 0;
	}
	lx->pos++;
}

/*
 * Runs the lexer from lx->pos until the end, the first problem or
 * onkey's request to stop.  Structure (matching brackets, colons,
 * commas) is json-c's business; the lexer tracks just enough of it to
 * know depth, which strings are keys and when the root is closed.
 */
static void
lex_run(struct lex *lx)
{
	unsigned char c;

	while (lx->pos < lx->len && lx->err == LEX_OK && !lx->stopped) {
		c = (unsigned char)lx->s[lx->pos];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			lx->pos++;
			continue;
		}
		if (lx->done) {
			lexfail(lx, LEX_SYNTAX, lx->pos,
			    "unexpected data after the object");
			return;
		}
		if (!lx->started && c != '{') {
			lexfail(lx, LEX_NOTOBJ, lx->pos, NULL);
			return;
		}
		lx->started = true;
		switch (c) {
		case '{':
		case '[':
			lex_open(lx, c == '{');
			break;
		case '}':
		case ']':
			if (lx->depth > 0 && --lx->depth == 0)
				lx->done = true;
			lx->pos++;
			break;
		case ',':
			if (lx->depth > 0 && lx->stack[lx->depth - 1].isobj)
				lx->stack[lx->depth - 1].wantkey = true;
			lx->pos++;
			break;
		case ':':
			lx->pos++;
			break;
		case '"':
			lex_string(lx);
			break;
		default:
			if (c == '-' || isdigit_((char)c))
				lex_number(lx);
			else if (isalpha_((char)c))
				lex_word(lx);
			else if (c >= 0x80 &&
			    pv_valid_utf8_char(lx->s + lx->pos,
			        lx->len - lx->pos) == 0)
				lexfail(lx, LEX_SYNTAX, lx->pos,
				    "invalid UTF-8");
			else
				lexfail(lx, LEX_SYNTAX, lx->pos,
				    "unexpected character");
			break;
		}
	}
}

static void
lex_init(struct lex *lx, const char *s, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->s = s;
	lx->len = len;
	lx->target = SIZE_MAX;
}

/*
 * Appends sep and s[0..len) to the path at plen, cut to fit on a
 * character boundary (snprintf() could split a UTF-8 sequence).
 * Returns the new length.
 */
static size_t
path_add(char *path, size_t plen, const char *sep, const char *s, size_t len)
{
	size_t room = PATH_MAX_LEN - 1 - plen, n = strlen(sep);

	if (n > room)
		n = room;
	memcpy(path + plen, sep, n);
	plen += n;
	n = pv_valid_utf8_clip(s, len, room - n);
	memcpy(path + plen, s, n);
	plen += n;
	path[plen] = '\0';
	return plen;
}

/*
 * Pre-order walk comparing each object's member count in the tree with
 * the count in the text.  Returns 1 at the first difference (recorded
 * in w), 0 if there is none.  Recursion is bounded by the depth limit.
 */
static int
walk(struct walk *w, struct json_object *o, size_t plen)
{
	struct json_object *v;
	char idx[32];
	size_t i, n;
	int k;

	w->path[plen] = '\0';
	if (json_object_is_type(o, json_type_object)) {
		i = w->next++;
		if (i >= w->nobj ||
		    (size_t)json_object_object_length(o) != w->counts[i]) {
			w->bad = i;
			w->badobj = o;
			return 1;
		}
		json_object_object_foreach (o, key, val) {
			if (!json_object_is_type(val, json_type_object) &&
			    !json_object_is_type(val, json_type_array))
				continue;
			if (walk(w, val,
			        path_add(w->path, plen, plen == 0 ? "" : ".",
			            key, strlen(key))) != 0)
				return 1;
		}
		return 0;
	}
	n = json_object_array_length(o);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(o, i);
		if (!json_object_is_type(v, json_type_object) &&
		    !json_object_is_type(v, json_type_array))
			continue;
		k = snprintf(idx, sizeof(idx), "[%zu]", i);
		if (walk(w, v,
		        path_add(w->path, plen, "", idx,
		            k < 0 ? 0 : (size_t)k)) != 0)
			return 1;
	}
	return 0;
}

/* Appends the UTF-8 encoding of cp to out; returns bytes written. */
static size_t
utf8_put(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decodes the body of a string literal the lexer has accepted (so its
 * escapes are well-formed and surrogates paired) into out, which has
 * room for n + 1 bytes: decoding never grows the text.
 */
static void
decode(const char *s, size_t n, char *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned long cp;
	size_t i = 0, o = 0;

	while (i < n) {
		if (s[i] != '\\') {
			out[o++] = s[i++];
			continue;
		}
		if (s[i + 1] != 'u') {
			out[o++] = to[strchr(from, s[i + 1]) - from];
			i += 2;
			continue;
		}
		cp = (unsigned long)hex4(s + i + 2, 4);
		i += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) +
			    ((unsigned long)hex4(s + i + 2, 4) - 0xdc00);
			i += 6;
		}
		o += utf8_put(out + o, cp);
	}
	out[o] = '\0';
}

/*
 * onkey for the object holding a duplicate: deletes each key from the
 * tree object as it is seen, so the first key that is already gone is
 * the first repeat.  The tree is being thrown away, so this is fine.
 */
static int
dup_key(void *arg, const char *lit, size_t n)
{
	struct dupfind *df = arg;
	char *key;

	if ((key = pv_arena_alloc(df->arena, n + 1, df->err)) == NULL)
		return 1;
	decode(lit, n, key);
	if (!json_object_object_get_ex(df->obj, key, NULL)) {
		df->key = key;
		return 1;
	}
	json_object_object_del(df->obj, key);
	return 0;
}

/* Refuses duplicate keys anywhere in root; see the file comment. */
static int
check_dups(struct pv_arena *a, const char *s, size_t len,
    struct json_object *root, size_t nobj, struct pv_err *err)
{
	struct dupfind df;
	struct walk w;
	struct lex lx;
	char field[PATH_MAX_LEN + KEY_QUOTE_MAX + 2];
	size_t *counts, kn;

	if ((counts = pv_arena_calloc(a, nobj, sizeof(*counts), err)) == NULL)
		return -1;
	lex_init(&lx, s, len);
	lx.counts = counts;
	lex_run(&lx);
	memset(&w, 0, sizeof(w));
	w.counts = counts;
	w.nobj = nobj;
	if (walk(&w, root, 0) == 0)
		return 0;
	memset(&df, 0, sizeof(df));
	df.arena = a;
	df.obj = w.badobj;
	df.err = err;
	lex_init(&lx, s, len);
	lx.target = w.bad;
	lx.onkey = dup_key;
	lx.arg = &df;
	lex_run(&lx);
	if (err->code != PV_OK)
		return -1;
	if (df.key == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL,
		    "duplicate key check lost its place at object %zu", w.bad);
		return -1;
	}
	kn = pv_valid_utf8_clip(df.key, strlen(df.key), KEY_QUOTE_MAX);
	if (snprintf(field, sizeof(field), "%s%s%.*s", w.path,
	        w.path[0] == '\0' ? "" : ".", (int)kn, df.key) < 0)
		field[0] = '\0';
	kn = pv_valid_utf8_clip(field, strlen(field), sizeof(err->field) - 1);
	field[kn] = '\0';
	kn = pv_valid_utf8_clip(df.key, strlen(df.key), KEY_QUOTE_MAX);
	PV_ERR(err, PV_E_INVALID, field, "duplicate key \"%.*s\"", (int)kn,
	    df.key);
	return -1;
}

static void
syntax(struct pv_err *err, const char *why, size_t pos)
{
	PV_ERR(err, PV_E_INVALID, NULL,
	    "request body is not valid JSON: %s at byte %zu", why, pos);
}

/*
 * Parses s[0..len) as one JSON object (see pv_json.h for what is
 * refused) and stores the root in *out; the tree belongs to the arena
 * (json_object_put at reset) and *out is NULL on failure.  Errors:
 * PV_E_INVALID ("request body must be a JSON object" for an empty body
 * or another root; "request body is not valid JSON: <why> at byte N";
 * "request body has nesting deeper than 16 levels at byte N";
 * 'duplicate key "k"' with err->field the key's path), PV_E_TOOBIG (over
 * PV_JSON_MAX_CONTAINERS or INT_MAX bytes), PV_E_NOMEM.
 */
int
pv_json_parse(struct pv_arena *a, const char *s, size_t len,
    struct json_object **out, struct pv_err *err)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	struct lex lx;
	size_t end;

	*out = NULL;
	if (s == NULL)
		len = 0;
	if (len > INT_MAX) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "request body is too large");
		return -1;
	}
	lex_init(&lx, s, len);
	lex_run(&lx);
	if (lx.err == LEX_NOTOBJ || (lx.err == LEX_OK && !lx.started)) {
		PV_ERR(err, PV_E_INVALID, NULL,
		    "request body must be a JSON object");
		return -1;
	}
	if (lx.err == LEX_TOOBIG) {
		PV_ERR(err, PV_E_TOOBIG, NULL,
		    "request body has more than %d JSON objects and arrays",
		    PV_JSON_MAX_CONTAINERS);
		return -1;
	}
	if ((tok = json_tokener_new_ex(PV_JSON_MAX_DEPTH + 1)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	json_tokener_set_flags(tok, PARSE_FLAGS);
	/* Only the text before the lexer's complaint, so the first wins. */
	root = json_tokener_parse_ex(tok, s,
	    (int)(lx.err == LEX_OK ? len : lx.errpos));
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (root != NULL && pv_arena_defer(a, put, root, err) == -1)
		return -1;
	if (root == NULL && jerr != json_tokener_continue) {
		if (jerr == json_tokener_success) {
			PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
			return -1;
		}
		if (jerr == json_tokener_error_depth)
			PV_ERR(err, PV_E_INVALID, NULL,
			    "request body " TOO_DEEP " at byte %zu", end);
		else
			syntax(err, json_tokener_error_desc(jerr), end);
		return -1;
	}
	if (lx.err == LEX_SYNTAX) {
		syntax(err, lx.why, lx.errpos);
		return -1;
	}
	if (lx.err == LEX_REFUSED) {
		PV_ERR(err, PV_E_INVALID, NULL, "request body %s at byte %zu",
		    lx.why, lx.errpos);
		return -1;
	}
	if (root == NULL) {
		syntax(err, "unexpected end of input", len);
		return -1;
	}
	if (!json_object_is_type(root, json_type_object)) {
		PV_ERR(err, PV_E_INVALID, NULL,
		    "request body must be a JSON object");
		return -1;
	}
	if (check_dups(a, s, len, root, lx.nobj, err) == -1)
		return -1;
	*out = root;
	return 0;
}

/* How a value's type reads in "must be X, not Y". */
static const char *
tname(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction or exponent";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "an unknown type";
}

static int
want(struct json_object *v, enum json_type t, const char *what,
    const char *field, struct pv_err *err)
{
	if (json_object_is_type(v, t))
		return 0;
	PV_ERR_INVALID(err, field, "must be %s, not %s", what, tname(v));
	return -1;
}

static int
check_str(struct json_object *v, const char *field, size_t minlen,
    size_t maxlen, const char **out, struct pv_err *err)
{
	const char *s;
	size_t len;

	if (want(v, json_type_string, "a string", field, err) == -1)
		return -1;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len < minlen) {
		if (minlen == 1)
			PV_ERR_INVALID(err, field, "must not be empty");
		else
			PV_ERR_INVALID(err, field,
			    "must be at least %zu bytes long", minlen);
		return -1;
	}
	if (len > maxlen) {
		PV_ERR_INVALID(err, field, "must be at most %zu bytes long",
		    maxlen);
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		PV_ERR_INVALID(err, field, "must not contain NUL characters");
		return -1;
	}
	*out = s;
	return 0;
}

/*
 * json-c clamps integers beyond int64 to INT64_MIN/INT64_MAX (and keeps
 * 2^63..2^64-1 as unsigned, which json_object_get_int64() also clamps
 * to INT64_MAX), so the two extremes cannot be told apart from
 * overflow and are refused.
 */
static int
check_int(struct json_object *v, const char *field, int64_t min, int64_t max,
    int64_t *out, struct pv_err *err)
{
	int64_t i;

	if (json_object_is_type(v, json_type_double)) {
		PV_ERR_INVALID(err, field,
		    "must be an integer without a fraction or exponent");
		return -1;
	}
	if (want(v, json_type_int, "an integer", field, err) == -1)
		return -1;
	i = json_object_get_int64(v);
	if ((i == INT64_MAX && max == INT64_MAX) ||
	    (i == INT64_MIN && min == INT64_MIN)) {
		PV_ERR_INVALID(err, field, "%s",
		    i > 0 ? "is too large" : "is too small");
		return -1;
	}
	if (pv_valid_range(i, min, max, field, err) == -1)
		return -1;
	*out = i;
	return 0;
}

static int
check_arr(struct json_object *v, const char *field, size_t min_n, size_t max_n,
    struct json_object **out, struct pv_err *err)
{
	size_t n;

	if (want(v, json_type_array, "an array", field, err) == -1)
		return -1;
	n = json_object_array_length(v);
	if (n < min_n) {
		if (min_n == 1)
			PV_ERR_INVALID(err, field, "must not be empty");
		else
			PV_ERR_INVALID(err, field,
			    "must have at least %zu elements", min_n);
		return -1;
	}
	if (n > max_n) {
		PV_ERR_INVALID(err, field, "must have at most %zu elements",
		    max_n);
		return -1;
	}
	*out = v;
	return 0;
}

/* Finds key: 1 present (*v may be NULL for JSON null), 0 absent. */
static int
member(struct json_object *obj, const char *key, struct json_object **v)
{
	*v = NULL;
	return json_object_object_get_ex(obj, key, v) ? 1 : 0;
}

/* Required field: absent is "is required", null is a type error. */
static int
need(struct json_object *obj, const char *key, struct json_object **v,
    struct pv_err *err)
{
	if (member(obj, key, v))
		return 0;
	PV_ERR_INVALID(err, key, "is required");
	return -1;
}

/* Optional field: 1 if present and not null. */
static int
have(struct json_object *obj, const char *key, struct json_object **v)
{
	return member(obj, key, v) && *v != NULL;
}

/*
 * Reads the string obj[key] of minlen..maxlen bytes into *out, which
 * borrows from the tree (arena lifetime).  Strings are well-formed
 * UTF-8 (the parser saw to it) and may not contain NUL, so *out is a
 * safe C string.  Returns 0, or -1 with PV_E_INVALID naming key if it
 * is absent, null, another type, too short or too long.
 */
int
pv_json_str(struct json_object *obj, const char *key, size_t minlen,
    size_t maxlen, const char **out, struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (need(obj, key, &v, err) == -1)
		return -1;
	return check_str(v, key, minlen, maxlen, out, err);
}

/* Like pv_json_str(), but absent or null sets *out to NULL and is 0. */
int
pv_json_str_opt(struct json_object *obj, const char *key, size_t minlen,
    size_t maxlen, const char **out, struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (!have(obj, key, &v))
		return 0;
	return check_str(v, key, minlen, maxlen, out, err);
}

/*
 * Reads the integer obj[key] in [min, max] into *out.  Doubles (1.0,
 * 1e3), strings and other types are refused, as are INT64_MIN and
 * INT64_MAX when they are bounds (json-c clamps overflow to them).
 * Returns 0, or -1 with PV_E_INVALID naming key.
 */
int
pv_json_int(struct json_object *obj, const char *key, int64_t min, int64_t max,
    int64_t *out, struct pv_err *err)
{
	struct json_object *v;

	if (need(obj, key, &v, err) == -1)
		return -1;
	return check_int(v, key, min, max, out, err);
}

/* Like pv_json_int(), but absent or null stores def and returns 0 (a
 * def outside [min, max] tells absence apart). */
int
pv_json_int_opt(struct json_object *obj, const char *key, int64_t min,
    int64_t max, int64_t def, int64_t *out, struct pv_err *err)
{
	struct json_object *v;

	if (!have(obj, key, &v)) {
		*out = def;
		return 0;
	}
	return check_int(v, key, min, max, out, err);
}

/* Reads obj[key], which must be JSON true or false, into *out.  Returns
 * 0, or -1 with PV_E_INVALID naming key. */
int
pv_json_bool(struct json_object *obj, const char *key, bool *out,
    struct pv_err *err)
{
	struct json_object *v;

	if (need(obj, key, &v, err) == -1 ||
	    want(v, json_type_boolean, "true or false", key, err) == -1)
		return -1;
	*out = json_object_get_boolean(v) != 0;
	return 0;
}

/* Like pv_json_bool(), but absent or null stores def and returns 0. */
int
pv_json_bool_opt(struct json_object *obj, const char *key, bool def, bool *out,
    struct pv_err *err)
{
	struct json_object *v;

	if (!have(obj, key, &v)) {
		*out = def;
		return 0;
	}
	if (want(v, json_type_boolean, "true or false", key, err) == -1)
		return -1;
	*out = json_object_get_boolean(v) != 0;
	return 0;
}

/* Reads the object obj[key] into *out (borrowed from the tree).
 * Returns 0, or -1 with PV_E_INVALID naming key. */
int
pv_json_obj(struct json_object *obj, const char *key, struct json_object **out,
    struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (need(obj, key, &v, err) == -1 ||
	    want(v, json_type_object, "an object", key, err) == -1)
		return -1;
	*out = v;
	return 0;
}

/* Like pv_json_obj(), but absent or null sets *out to NULL and is 0. */
int
pv_json_obj_opt(struct json_object *obj, const char *key,
    struct json_object **out, struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (!have(obj, key, &v))
		return 0;
	if (want(v, json_type_object, "an object", key, err) == -1)
		return -1;
	*out = v;
	return 0;
}

/*
 * Reads the array obj[key] of min_n..max_n elements into *out
 * (borrowed); json_object_array_length() gives n.  Element types are
 * checked by the pv_json_at_*() readers.  Returns 0, or -1 with
 * PV_E_INVALID naming key.
 */
int
pv_json_arr(struct json_object *obj, const char *key, size_t min_n,
    size_t max_n, struct json_object **out, struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (need(obj, key, &v, err) == -1)
		return -1;
	return check_arr(v, key, min_n, max_n, out, err);
}

/* Like pv_json_arr(), but absent or null sets *out to NULL and is 0. */
int
pv_json_arr_opt(struct json_object *obj, const char *key, size_t min_n,
    size_t max_n, struct json_object **out, struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (!have(obj, key, &v))
		return 0;
	return check_arr(v, key, min_n, max_n, out, err);
}

static int
element(struct json_object *arr, size_t i, struct json_object **v,
    struct pv_err *err)
{
	if (!json_object_is_type(arr, json_type_array) ||
	    i >= json_object_array_length(arr)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "array index %zu out of range",
		    i);
		return -1;
	}
	*v = json_object_array_get_idx(arr, i);
	return 0;
}

/*
 * Reads element i of arr, which must be an object, into *out
 * (borrowed).  Returns 0, or -1 with PV_E_INVALID about an unnamed
 * value ("value must be an object, not a string"), which
 * pv_json_err_prefix(err, "items[%zu]", i) names; PV_E_INTERNAL if i
 * is out of range.
 */
int
pv_json_at_obj(struct json_object *arr, size_t i, struct json_object **out,
    struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (element(arr, i, &v, err) == -1 ||
	    want(v, json_type_object, "an object", NULL, err) == -1)
		return -1;
	*out = v;
	return 0;
}

/* Element i of arr as a string; see pv_json_str() and pv_json_at_obj(). */
int
pv_json_at_str(struct json_object *arr, size_t i, size_t minlen, size_t maxlen,
    const char **out, struct pv_err *err)
{
	struct json_object *v;

	*out = NULL;
	if (element(arr, i, &v, err) == -1)
		return -1;
	return check_str(v, NULL, minlen, maxlen, out, err);
}

/* Element i of arr as an integer; see pv_json_int() and pv_json_at_obj(). */
int
pv_json_at_int(struct json_object *arr, size_t i, int64_t min, int64_t max,
    int64_t *out, struct pv_err *err)
{
	struct json_object *v;

	if (element(arr, i, &v, err) == -1)
		return -1;
	return check_int(v, NULL, min, max, out, err);
}

/*
 * Refuses the first member of obj (in document order) whose name is not
 * in keys, a NULL-terminated list: PV_E_INVALID 'unknown field "k"'
 * with err->field k (API.md: typos surface at once).  Returns 0 or -1;
 * PV_E_INTERNAL if obj is not an object.
 */
int
pv_json_only_keys(struct json_object *obj, const char *const *keys,
    struct pv_err *err)
{
	char field[sizeof(err->field)];
	size_t i, n;

	if (!json_object_is_type(obj, json_type_object)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "not a JSON object");
		return -1;
	}
	json_object_object_foreach (obj, key, val) {
		(void)val;
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (keys[i] != NULL)
			continue;
		n = pv_valid_utf8_clip(key, strlen(key), sizeof(field) - 1);
		memcpy(field, key, n);
		field[n] = '\0';
		PV_ERR(err, PV_E_INVALID, field, "unknown field \"%s\"", field);
		return -1;
	}
	return 0;
}

/*
 * Makes a recorded error about a nested value name its full path: the
 * formatted prefix ("items[2]", "shipping_address") is joined to
 * err->field with '.' (or directly before "[i]"), and the quoted old
 * field in the message becomes the quoted new path; an error about an
 * unnamed value ('value must be ...', from pv_json_at_*()) takes the
 * prefix as its name.  Errors that name no field (PV_E_NOMEM,
 * syntax) are left alone, as is a clear err.  Returns -1 so a caller
 * can write "return pv_json_err_prefix(err, ...)".
 */
int
pv_json_err_prefix(struct pv_err *err, const char *fmt, ...)
{
	/*
	 * Each piece is built in a buffer that cannot overflow and then cut
	 * on a character boundary: snprintf() alone could split a UTF-8
	 * sequence, and these strings end up in JSON replies.
	 */
	char pre[4 * sizeof(err->field)], field[4 * sizeof(err->field)];
	char quoted[sizeof(err->field) + 2];
	char msg[sizeof(err->msg) + 2 * sizeof(err->field) + 8];
	const char *hit;
	va_list ap;
	size_t n;
	int rc;

	if (err->code == PV_OK)
		return -1;
	if (err->field[0] == '\0' && strncmp(err->msg, "value ", 6) != 0)
		return -1;
	va_start(ap, fmt);
	rc = vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	pre[pv_valid_utf8_clip(pre, strlen(pre), sizeof(err->field) - 1)] =
	    '\0';
	rc = snprintf(field, sizeof(field), "%s%s%s", pre,
	    err->field[0] == '\0' || err->field[0] == '[' ? "" : ".",
	    err->field);
	if (rc < 0)
		return -1;
	field[pv_valid_utf8_clip(field, strlen(field),
	    sizeof(err->field) - 1)] = '\0';
	if (err->field[0] == '\0') {
		rc = snprintf(msg, sizeof(msg), "\"%s\" %s", field,
		    err->msg + 6);
	} else {
		rc = snprintf(quoted, sizeof(quoted), "\"%s\"", err->field);
		if (rc >= 0 && (hit = strstr(err->msg, quoted)) != NULL)
			rc = snprintf(msg, sizeof(msg), "%.*s\"%s\"%s",
			    (int)(hit - err->msg), err->msg, field,
			    hit + strlen(quoted));
		else
			rc = snprintf(msg, sizeof(msg), "%s", err->msg);
	}
	if (rc < 0)
		return -1;
	n = pv_valid_utf8_clip(msg, strlen(msg), sizeof(err->msg) - 1);
	memcpy(err->msg, msg, n);
	err->msg[n] = '\0';
	memcpy(err->field, field, strlen(field) + 1);
	return -1;
}

/* Builders stop at an earlier error; a NULL target is one. */
static int
stuck(struct json_object *o, enum json_type t, struct pv_err *err)
{
	if (err->code != PV_OK)
		return 1;
	if (!json_object_is_type(o, t)) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "JSON builder given %s",
		    o == NULL ? "no target" : "the wrong type");
		return 1;
	}
	return 0;
}

static struct json_object *
adopt(struct pv_arena *a, struct json_object *o, struct pv_err *err)
{
	if (o == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return NULL;
	}
	if (pv_arena_defer(a, put, o, err) == -1)
		return NULL;
	return o;
}

/*
 * Returns a new empty object owned by the arena, or NULL with
 * PV_E_NOMEM (or PV_E_TOOBIG from the arena).  Sticky: returns NULL at
 * once if err already holds an error.
 */
struct json_object *
pv_json_new_obj(struct pv_arena *a, struct pv_err *err)
{
	if (err->code != PV_OK)
		return NULL;
	return adopt(a, json_object_new_object(), err);
}

/* Returns a new empty array owned by the arena; see pv_json_new_obj(). */
struct json_object *
pv_json_new_arr(struct pv_arena *a, struct pv_err *err)
{
	if (err->code != PV_OK)
		return NULL;
	return adopt(a, json_object_new_array(), err);
}

/* Adds key: v to obj, taking ownership of v (NULL is JSON null). */
static int
add(struct json_object *obj, const char *key, struct json_object *v,
    struct pv_err *err)
{
	if (json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Sets obj[key] to child, replacing any earlier value.  Adds a
 * reference to child rather than taking the caller's (see pv_json.h),
 * so child stays owned by whoever owned it; NULL child is JSON null.
 * child must not contain obj.  Returns 0, or -1 with PV_E_NOMEM;
 * sticky.
 */
int
pv_json_set(struct json_object *obj, const char *key, struct json_object *child,
    struct pv_err *err)
{
	if (stuck(obj, json_type_object, err))
		return -1;
	return add(obj, key, json_object_get(child), err);
}

/* Sets obj[key] to a copy of the C string s (NULL: JSON null); sticky. */
int
pv_json_set_str(struct json_object *obj, const char *key, const char *s,
    struct pv_err *err)
{
	struct json_object *v = NULL;

	if (stuck(obj, json_type_object, err))
		return -1;
	if (s != NULL && (v = json_object_new_string(s)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return add(obj, key, v, err);
}

/* Sets obj[key] to a copy of s[0..len), which may hold NULs; sticky.
 * PV_E_TOOBIG past INT_MAX bytes. */
int
pv_json_set_strn(struct json_object *obj, const char *key, const char *s,
    size_t len, struct pv_err *err)
{
	struct json_object *v;

	if (stuck(obj, json_type_object, err))
		return -1;
	if (len > INT_MAX) {
		PV_ERR(err, PV_E_TOOBIG, NULL, "string too long for JSON");
		return -1;
	}
	if ((v = json_object_new_string_len(s, (int)len)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return add(obj, key, v, err);
}

/* Sets obj[key] to the integer v; sticky. */
int
pv_json_set_int(struct json_object *obj, const char *key, int64_t v,
    struct pv_err *err)
{
	struct json_object *o;

	if (stuck(obj, json_type_object, err))
		return -1;
	if ((o = json_object_new_int64(v)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return add(obj, key, o, err);
}

/*
 * Adds a JSON number that is not money (latencies, rates); money is
 * always int64 minor units and decimal strings, never a double.
 */
int
pv_json_set_double(struct json_object *obj, const char *key, double v,
    struct pv_err *err)
{
	struct json_object *o;

	if (stuck(obj, json_type_object, err))
		return -1;
	if (!isfinite(v)) {
		PV_ERR(err, PV_E_INTERNAL, key, "%s is not a finite number",
		    key);
		return -1;
	}
	if ((o = json_object_new_double(v)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return add(obj, key, o, err);
}

/* Sets obj[key] to true or false; sticky. */
int
pv_json_set_bool(struct json_object *obj, const char *key, bool v,
    struct pv_err *err)
{
	struct json_object *o;

	if (stuck(obj, json_type_object, err))
		return -1;
	if ((o = json_object_new_boolean(v)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return add(obj, key, o, err);
}

/* Appends v to arr, taking ownership of v (NULL is JSON null). */
static int
append(struct json_object *arr, struct json_object *v, struct pv_err *err)
{
	if (json_object_array_add(arr, v) != 0) {
		json_object_put(v);
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return 0;
}

/* Appends child to arr, adding a reference like pv_json_set(); sticky. */
int
pv_json_push(struct json_object *arr, struct json_object *child,
    struct pv_err *err)
{
	if (stuck(arr, json_type_array, err))
		return -1;
	return append(arr, json_object_get(child), err);
}

/* Appends a copy of the C string s (NULL: JSON null) to arr; sticky. */
int
pv_json_push_str(struct json_object *arr, const char *s, struct pv_err *err)
{
	struct json_object *v = NULL;

	if (stuck(arr, json_type_array, err))
		return -1;
	if (s != NULL && (v = json_object_new_string(s)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return append(arr, v, err);
}

/* Appends the integer v to arr; sticky. */
int
pv_json_push_int(struct json_object *arr, int64_t v, struct pv_err *err)
{
	struct json_object *o;

	if (stuck(arr, json_type_array, err))
		return -1;
	if ((o = json_object_new_int64(v)) == NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	return append(arr, o, err);
}

/*
 * Serialises obj without whitespace or "\/" escapes into arena memory
 * (NUL-terminated; *outlen may be NULL).  This is where a sticky
 * builder error surfaces: returns -1 at once if err holds one.
 * Otherwise returns 0, or -1 with PV_E_NOMEM/PV_E_TOOBIG, or
 * PV_E_INTERNAL for a NULL obj.
 */
int
pv_json_to_str(struct pv_arena *a, struct json_object *obj, const char **out,
    size_t *outlen, struct pv_err *err)
{
	const char *s;
	char *copy;
	size_t len;

	*out = NULL;
	if (err->code != PV_OK)
		return -1;
	if (obj == NULL) {
		PV_ERR(err, PV_E_INTERNAL, NULL, "nothing to serialise");
		return -1;
	}
	if ((s = json_object_to_json_string_length(obj, OUTPUT_FLAGS, &len)) ==
	    NULL) {
		PV_ERR(err, PV_E_NOMEM, NULL, "out of memory");
		return -1;
	}
	if ((copy = pv_arena_strndup(a, s, len, err)) == NULL)
		return -1;
	*out = copy;
	if (outlen != NULL)
		*outlen = len;
	return 0;
}
