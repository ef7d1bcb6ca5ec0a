/* What Rust's std for x86_64-unknown-linux-gnu expects of glibc beyond what musl
 * has, for `cargo forge-release-musl` (a forge linked statically against musl's
 * libc.a; tools/build.rs compiles this file only then). Each answer is what musl
 * itself does. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* std asks the version to choose code paths (posix_spawn reports exec errors from
 * glibc 2.24 on, as musl's always does). */
const char *gnu_get_libc_version(void) { return "2.36"; }

/* std calls this to reload resolv.conf after a failed lookup; musl reads it on
 * every lookup, so there is nothing to reload. */
int __res_init(void) { return 0; }

/* glibc 2.35's struct dl_find_object on x86_64, as libgcc's unwinder reads it. */
struct dl_find_object {
    unsigned long long dlfo_flags;
    void *dlfo_map_start;
    void *dlfo_map_end;
    struct link_map *dlfo_link_map;
    void *dlfo_eh_frame;
    unsigned long long reserved[7];
};

struct lookup {
    uintptr_t pc;
    struct dl_find_object *out;
    int found;
};

static int visit(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct lookup *l = data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    void *eh_frame = NULL;
    int holds_pc = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + p->p_vaddr;
        if (p->p_type == PT_LOAD) {
            if (start < lo) lo = start;
            if (start + p->p_memsz > hi) hi = start + p->p_memsz;
            if (l->pc >= start && l->pc < start + p->p_memsz) holds_pc = 1;
        } else if (p->p_type == PT_GNU_EH_FRAME) {
            eh_frame = (void *)start;
        }
    }
    if (!holds_pc) return 0;
    l->out->dlfo_flags = 0;
    l->out->dlfo_map_start = (void *)lo;
    l->out->dlfo_map_end = (void *)hi;
    l->out->dlfo_link_map = NULL;
    l->out->dlfo_eh_frame = eh_frame;
    l->found = 1;
    return 1;
}

/* libgcc's unwinder (built for glibc >= 2.35) finds a PC's unwind tables with
 * this instead of walking dl_iterate_phdr itself; here it walks musl's. */
int _dl_find_object(void *pc, struct dl_find_object *out) {
    struct lookup l = {(uintptr_t)pc, out, 0};
    dl_iterate_phdr(visit, &l);
    return l.found ? 0 : -1;
}

/* libgcc's unwinder calls these through weak references, which do not pull their
 * members out of a static libc.a (a null call on the first panic): named here,
 * they are linked in. */
void *const forge_musl_keep_pthread[] = {
    (void *)pthread_once,       (void *)pthread_mutex_lock,  (void *)pthread_mutex_unlock,
    (void *)pthread_key_create, (void *)pthread_key_delete,  (void *)pthread_getspecific,
    (void *)pthread_setspecific,
};
