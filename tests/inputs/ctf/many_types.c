// SPDX-License-Identifier: BSD-2-Clause
// Types for `mmar btf from-ctf` (tests/ctf/to_btf_test.cpp): compiled with
// gcc -gctf, converted to BTF, printed as C by `mmar btf dump --format c`
// and compiled again with layout asserts from the CTF dict's own sizes and
// offsets. Bitfields, unions, anonymous members, arrays (multi-dimensional
// too), function pointers, enums of several sizes, forward declarations,
// qualifiers, typedef chains, a packed struct, complex floats (the header
// check includes <complex.h> for their names).
#include <complex.h>
#include <stddef.h>
#include <stdint.h>

enum color { RED, GREEN = 5, BLUE = -3 };
enum small_enum { SMALL_A, SMALL_B = 200 };
enum __attribute__((packed)) packed_enum { PACKED_X = 1, PACKED_Y = 2 };
typedef enum { ANON_ONE = 1, ANON_TWO } anon_enum_t;

struct forward_only;
union forward_union;
typedef struct forward_only forward_only_t;

typedef int (*binop_fn)(int, int);
typedef void (*vararg_fn)(const char* fmt, ...);
typedef unsigned long long u64_t;
typedef u64_t counter_t;

struct bits {
  unsigned int a : 3;
  unsigned int b : 5;
  int c : 7;
  unsigned char d : 1;
  enum color e : 4;
  unsigned long long f : 40;
  unsigned int : 0;
  short g;
  _Bool flag : 1;
};

union value {
  int i;
  float f;
  double d;
  char bytes[12];
  struct {
    uint16_t lo, hi;
  } halves;
};

struct node {
  struct node* next;
  struct node* prev;
  const char* name;
  volatile int refcount;
  int* restrict data;
  counter_t count;
};

struct with_anon {
  int kind;
  union {
    long as_long;
    struct {
      short x, y;
    };
    void* ptr;
  };
  struct {
    char tag[3];
    unsigned flags : 4;
  } meta;
  int after;
};

struct arrays {
  int one[4];
  char two[2][3];
  long three[2][3][4];
  struct node nodes[2];
  void (*handlers[3])(int);
  char flexible_before;
  int flexible[];
};

struct __attribute__((packed)) packed_thing {
  char c;
  int i;
  short s;
  long long ll;
};

struct callbacks {
  binop_fn add;
  vararg_fn log;
  int (*cmp)(const void*, const void*);
  struct node* (*find)(struct node* head, const char* name);
  void (*(*nested)(int))(void);
  forward_only_t* opaque;
  union forward_union* opaque_union;
};

struct enums {
  enum color c;
  enum small_enum s;
  enum packed_enum p;
  anon_enum_t a;
  char pad;
};

struct aligned {
  char c;
  int __attribute__((aligned(16))) wide;
  double d;
};

struct numbers {
  float complex fc;
  double complex dc;
  long double complex ldc;
  long double ld;
};

typedef struct {
  float x, y, z;
  double w;
} vec4_t;

struct everything {
  struct bits bits;
  union value value;
  struct node node;
  struct with_anon anon;
  struct packed_thing packed;
  struct callbacks cb;
  struct enums enums;
  struct aligned aligned;
  vec4_t vec;
  struct numbers numbers;
  const volatile int cv;
  uint8_t u8;
  int64_t i64;
  size_t sz;
  struct arrays arrays;  // ends with a flexible array: last
};

struct everything everything_var;
struct arrays arrays_var;
int counter = 3;

int use_everything(struct everything* e, int n) { return e->bits.a + n + counter; }
static int helper(const vec4_t* v) { return (int)v->x; }
int call_helper(vec4_t* v) { return helper(v); }
