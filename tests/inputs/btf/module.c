// SPDX-License-Identifier: BSD-2-Clause
/* A kernel-module-like C file for split BTF tests: every BTF kind pahole
 * and gcc emit (bitfields, signed and 64-bit enums, unions, function
 * pointers, arrays, qualifiers, typedefs, functions, variables, floats). */
#include <stdint.h>

struct list_head { struct list_head *next, *prev; };
enum color { RED = -1, GREEN = 2, BLUE = 0x7fffffff };
enum big { HUGE = 0x123456789aULL, NEG_BIG = -2LL };
enum flags { F_HIGH = 0xf0000000u };
struct my_module_state {
  struct list_head link;
  unsigned int flags : 3, mode : 5;
  enum color c;
  enum big b;
  enum flags f;
  int (*cb)(struct my_module_state *, const char *name);
  char name[16];
  union { long l; double d; } u;
  volatile const int *restrict p;
  struct forward_only *fwd;
  _Bool ready;
};
typedef struct my_module_state my_state_t;
static int helper(my_state_t *s, int x) { return s->flags + x; }
int my_module_init(my_state_t *s) { return helper(s, 3); }
int counter = 5;
static float ratio;
float get_ratio(void) { return ratio; }
