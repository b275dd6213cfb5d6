// SPDX-License-Identifier: BSD-2-Clause
/* A small "vmlinux" for split BTF tests that must not depend on the
 * running kernel: the module's types partly resolve into this base. */
struct list_head { struct list_head *next, *prev; };
typedef unsigned int u32;
struct task_struct { int pid; u32 flags; struct list_head tasks; char comm[16]; };
int nr_threads;
int base_func(struct task_struct *t) { return t->pid; }
