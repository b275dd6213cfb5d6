// SPDX-License-Identifier: BSD-2-Clause
/* Declarations that stress a BTF-to-C converter: packed and padded layouts,
 * bitfields with gaps, function pointers returning function pointers,
 * arrays of them, multi-dimensional arrays, anonymous nested structs and
 * unions, a top-level anonymous enum, qualifiers in every position,
 * mutual recursion through pointers, and an empty struct. */
struct node;
typedef int (*cmp_fn)(const struct node *, const struct node *);
typedef cmp_fn (*cmp_factory)(int kind, ...);

enum { ANON_A = 1, ANON_B = 2 };

struct __attribute__((packed)) wire_header {
  unsigned char kind;
  unsigned int length;
  unsigned short flags;
};

struct gaps {
  char c;
  long l __attribute__((aligned(16)));
  unsigned int a : 3;
  unsigned int : 0;
  unsigned int b : 7;
  char tail;
} __attribute__((aligned(32)));

struct empty {};

struct node {
  struct node *left, *right;
  struct tree *owner;
  cmp_fn cmp;
  cmp_factory factories[4];
  int (*handlers[2][3])(void *ctx, unsigned long arg);
  void (*(*signal_like)(int, void (*)(int)))(int);
  const volatile char *const names[2];
  double matrix[3][4][5];
  union {
    struct { int x, y; } point;
    long raw;
    struct { unsigned char lo : 4, hi : 4; };
  };
  struct wire_header hdr;
  struct gaps g;
  struct empty e;
  enum { LOCAL_ONE, LOCAL_TWO } local;
};

struct tree {
  struct node *root;
  struct node nodes[2];
  unsigned long long count;
};

struct node *find(struct tree *t, const struct node *key) { return t->nodes[0].cmp(key, t->root) ? t->root : 0; }
struct tree global_tree;
struct wire_header wire;
int anon_value = ANON_A + ANON_B;
